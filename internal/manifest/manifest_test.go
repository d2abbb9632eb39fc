package manifest

import (
	"errors"
	"flag"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct"
)

var update = flag.Bool("update", false, "rewrite golden files")

func ptr[T any](v T) *T { return &v }

func TestParseBrief(t *testing.T) {
	data, err := os.ReadFile("testdata/brief.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	got := m.Apply(duct.Function{})
	want := duct.Function{
		Name:         "thumbnail",
		Runtime:      duct.RuntimeGo,
		Signature:    duct.SignatureHTTP,
		Handler:      "Handle",
		Timeout:      duct.Duration(30 * time.Second),
		Memory:       256 * duct.MiB,
		Concurrency:  1,
		MinInstances: 0,
		MaxInstances: 100,
		IdleTimeout:  duct.Duration(5 * time.Minute),
		Env:          map[string]string{"LOG_LEVEL": "info"},
		Secrets:      []string{"SLACK_SIGNING_SECRET"},
		Invoke:       duct.InvokeToken,
		Triggers: []duct.Trigger{
			{HTTP: &duct.HTTPTrigger{Path: "/hooks/slack", Methods: []string{"POST"}}},
			{Topic: &duct.TopicTrigger{Name: "uploads", Filter: `attributes.kind = "image"`}},
			{Schedule: &duct.ScheduleTrigger{Cron: "*/5 * * * *", Timezone: "Europe/Paris"}},
			{Bucket: &duct.BucketTrigger{Name: "images", Events: []string{"finalized"}}},
			{KV: &duct.KVTrigger{Bucket: "scores", Key: "user.*"}},
			{Event: &duct.EventTrigger{Type: "com.example.user.created"}},
		},
		Retry: &duct.RetryPolicy{
			Attempts:    ptr(2),
			MaxEventAge: duct.Duration(6 * time.Hour),
			OnFailure:   "failed-events",
			OnSuccess:   "",
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Apply:\n got %+v\nwant %+v", got, want)
	}
	if err := got.WithDefaults().Validate(); err != nil {
		t.Errorf("the brief's example does not validate: %v", err)
	}
	if m.MinInstances == nil || *m.MinInstances != 0 {
		t.Errorf("minInstances: 0 was given: got %v", m.MinInstances)
	}
	if m.Retry.OnSuccess == nil {
		t.Error(`onSuccess: "" was given: got nil`)
	}

	// Marshal, against a golden file, and back.
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/brief.golden.yaml"
	if *update {
		os.WriteFile(golden, out, 0o644)
	}
	want2, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(want2) {
		t.Errorf("Marshal:\n%s\nwant (%s):\n%s", out, golden, want2)
	}
	again, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Marshal): %v", err)
	}
	if !reflect.DeepEqual(again, m) {
		t.Errorf("Parse(Marshal) = %+v, want %+v", again, m)
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Manifest
	}{
		{"empty", "", Manifest{}},
		{"comments only", "# nothing\n\n# here\n", Manifest{}},
		{"document marker", "---\nname: a\n", Manifest{Name: ptr("a")}},
		{"explicit null document", "~\n", Manifest{}},
		{"null fields are not given", "name: a\ntimeout:\nenv: ~\ntriggers: null\n", Manifest{Name: ptr("a")}},
		{"zero min instances is given", "minInstances: 0", Manifest{MinInstances: ptr(0)}},
		{"durations", "timeout: 1m30s\nidleTimeout: 90m\nretry: {maxEventAge: 0.5h}", Manifest{
			Timeout:     ptr(duct.Duration(90 * time.Second)),
			IdleTimeout: ptr(duct.Duration(90 * time.Minute)),
			Retry:       &Retry{MaxEventAge: ptr(duct.Duration(30 * time.Minute))},
		}},
		{"binary size", "memory: 1Gi", Manifest{Memory: ptr(duct.GiB)}},
		{"decimal size", "memory: 512M", Manifest{Memory: ptr(duct.ByteSize(512e6))}},
		{"byte count", "memory: 268435456", Manifest{Memory: ptr(256 * duct.MiB)}},
		{"hex integer", "maxInstances: 0x10", Manifest{MaxInstances: ptr(16)}},
		{"env values as written", "env: {A: 3, B: true, C: 1.50, D: '', E: \"x y\"}", Manifest{
			Env: map[string]string{"A": "3", "B": "true", "C": "1.50", "D": "", "E": "x y"},
		}},
		{"empty env clears", "env: {}", Manifest{Env: map[string]string{}}},
		{"empty secrets clear", "secrets: []", Manifest{Secrets: []string{}}},
		{"empty triggers clear", "triggers: []", Manifest{Triggers: []duct.Trigger{}}},
		{"block lists", "command:\n  - ./server\n  - --port\n  - \"8080\"\n", Manifest{Command: []string{"./server", "--port", "8080"}}},
		{"empty methods mean any", "triggers: [{http: {path: /hook, methods: []}}]", Manifest{
			Triggers: []duct.Trigger{{HTTP: &duct.HTTPTrigger{Path: "/hook"}}},
		}},
		{"event signature", "signature: event\nruntime: python\nentry: src/main.py", Manifest{
			Signature: ptr(duct.SignatureEvent), Runtime: ptr(duct.RuntimePython), Entry: ptr("src/main.py"),
		}},
		{"image", "runtime: image\nconcurrency: 80\ncommand: [/app/server]", Manifest{
			Runtime: ptr(duct.RuntimeImage), Concurrency: ptr(80), Command: []string{"/app/server"},
		}},
		{"retry zero attempts", "retry: {attempts: 0}", Manifest{Retry: &Retry{Attempts: ptr(0)}}},
		{"explicit str tag", "name: !!str abc", Manifest{Name: ptr("abc")}},
		{"anchor without alias", "name: &n abc", Manifest{Name: ptr("abc")}},
		{"BOM", "\ufeffname: a", Manifest{Name: ptr("a")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*m, tt.want) {
				t.Errorf("Parse:\n got %s\nwant %s", dump(m), dump(&tt.want))
			}
		})
	}
}

func dump(m *Manifest) string {
	b, err := m.Marshal()
	if err != nil {
		return err.Error()
	}
	return strings.ReplaceAll(string(b), "\n", "; ")
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the whole message
	}{
		{"unknown field", "name: a\nruntime: go\nhandler: Handle\nmemroy: 1Gi\n", `invalid duct.yaml:4: unknown field "memroy" (did you mean "memory"?)`},
		{"unknown field, snake case", "min_instances: 1", `invalid duct.yaml:1: unknown field "min_instances" (did you mean "minInstances"?)`},
		{"unknown field, wrong case", "Name: a", `invalid duct.yaml:1: unknown field "Name" (did you mean "name"?)`},
		{"unknown field, nothing close", "flavour: vanilla", `invalid duct.yaml:1: unknown field "flavour"`},
		{"unknown nested field", "triggers:\n  - http: {paths: /x}\n", `invalid duct.yaml:2: triggers[0].http: unknown field "paths" (did you mean "path"?)`},
		{"unknown retry field", "retry:\n  attempt: 3\n", `invalid duct.yaml:2: retry: unknown field "attempt" (did you mean "attempts"?)`},
		{"unknown trigger kind", "triggers: [{cron: {schedule: x}}]", `invalid duct.yaml:1: triggers[0]: unknown field "cron"`},
		{"duration without unit", "name: a\n\ntimeout: 30\n", `invalid duct.yaml:3: timeout: duration "30" has no unit: want Go syntax such as 30s, 5m or 1h30m`},
		{"duration quoted without unit", `idleTimeout: "300"`, `invalid duct.yaml:1: idleTimeout: duration "300" has no unit: want Go syntax such as 30s, 5m or 1h30m`},
		{"duration float without unit", `timeout: 1.5`, `invalid duct.yaml:1: timeout: duration "1.5" has no unit: want Go syntax such as 30s, 5m or 1h30m`},
		{"duration junk", "timeout: soon", `invalid duct.yaml:1: timeout: duration "soon": want Go syntax such as 30s or 5m`},
		{"duration negative", "timeout: -5s", `invalid duct.yaml:1: timeout: duration "-5s" is negative`},
		{"duration list", "timeout: [30s]", `invalid duct.yaml:1: timeout: want a duration, got a list`},
		{"size junk", "memory: lots", `invalid duct.yaml:1: memory: size "lots": want a byte count or a number with Ki, Mi, Gi, K, M or G`},
		{"size below minimum", "memory: 1Mi", `invalid duct.yaml:1: memory: 1Mi: want at least 64Mi`},
		{"integer as string", `concurrency: "4"`, `invalid duct.yaml:1: concurrency: want an integer, got "4"`},
		{"integer as float", `concurrency: 1.5`, `invalid duct.yaml:1: concurrency: want an integer, got the number 1.5`},
		{"integer as bool", `maxInstances: true`, `invalid duct.yaml:1: maxInstances: want an integer, got the boolean true`},
		{"integer overflow", `maxInstances: 99999999999999999999`, `invalid duct.yaml:1: maxInstances: integer 99999999999999999999 out of range`},
		{"explicit zero concurrency", "concurrency: 0", `invalid duct.yaml:1: concurrency: 0: want 1 to 1000`},
		{"concurrency too high", "concurrency: 5000", `invalid duct.yaml:1: concurrency: 5000: want 1 to 1000`},
		{"explicit zero timeout", "timeout: 0s", `invalid duct.yaml:1: timeout: 0s: want more than 0 and at most 1h0m0s`},
		{"timeout too long", "timeout: 2h", `invalid duct.yaml:1: timeout: 2h0m0s: want more than 0 and at most 1h0m0s`},
		{"explicit zero memory", "memory: 0", `invalid duct.yaml:1: memory: 0: want at least 64Mi`},
		{"explicit zero max instances", "maxInstances: 0", `invalid duct.yaml:1: maxInstances: 0: want at least 1`},
		{"explicit zero idle timeout", "idleTimeout: 0s", `invalid duct.yaml:1: idleTimeout: 0s: want at least 1s`},
		{"negative min instances", "minInstances: -1", `invalid duct.yaml:1: minInstances: -1: want 0 or more`},
		{"min above max", "maxInstances: 3\nminInstances: 5", `invalid duct.yaml:2: minInstances: 5: want at most maxInstances (3)`},
		{"bad name", "name: Thumbnail", `invalid duct.yaml:1: name: "Thumbnail": use 1-63 lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen`},
		{"empty name", `name: ""`, `invalid duct.yaml:1: name: "": use 1-63 lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen`},
		{"reserved name", "name: api", `invalid duct.yaml:1: name: "api" is reserved`},
		{"unknown runtime", "runtime: rust", `invalid duct.yaml:1: runtime: "rust": want one of go, node, python, image`},
		{"unknown signature", "signature: grpc", `invalid duct.yaml:1: signature: "grpc": want http or event`},
		{"bad handler", "handler: my-handler", `invalid duct.yaml:1: handler: "my-handler" is not an identifier`},
		{"empty entry", `entry: ""`, `invalid duct.yaml:1: entry: "": leave the field out to detect the entry file`},
		{"entry escapes", `entry: ../x.py`, `invalid duct.yaml:1: entry: "../x.py": want a relative path inside the source`},
		{"empty command", `command: []`, `invalid duct.yaml:1: command: empty list: want the program and its arguments`},
		{"command as string", `command: ./server --port 8080`, `invalid duct.yaml:1: command: want a list of strings, got "./server --port 8080"`},
		{"null in command", "command: [./server, ~]", `invalid duct.yaml:1: command[1]: null item: write "" for an empty string`},
		{"bad invoke", "invoke: private", `invalid duct.yaml:1: invoke: "private": want public or token`},
		{"reserved env", "env:\n  A: x\n  PORT: 80\n", `invalid duct.yaml:3: env.PORT: "PORT" is reserved for the platform`},
		{"bad env name", "env: {1X: y}", `invalid duct.yaml:1: env.1X: "1X" is not a valid variable name`},
		{"env list", "env: [A=b]", `invalid duct.yaml:1: env: want a mapping of variable names to values, got a list`},
		{"null env value", "env: {A: }", `invalid duct.yaml:1: env.A: null value: write "" for an empty string`},
		{"duplicate env", "env:\n  A: x\n  A: y\n", `invalid duct.yaml:3: env: variable "A" given twice`},
		{"bad secret", "secrets: [ok, not-ok]", `invalid duct.yaml:1: secrets[1]: "not-ok" is not a valid secret name`},
		{"secrets as string", "secrets: TOKEN", `invalid duct.yaml:1: secrets: want a list of strings, got "TOKEN"`},
		{"two trigger kinds", "triggers:\n  - http: {path: /}\n    topic: {name: t}\n", `invalid duct.yaml:2: triggers[0]: want exactly one of http, topic, schedule, bucket, kv, event, got 2 (http, topic)`},
		{"empty trigger", "triggers:\n  - {}\n", `invalid duct.yaml:2: triggers[0]: want exactly one of http, topic, schedule, bucket, kv, event, got 0 ()`},
		{"null trigger", "triggers:\n  -\n", `invalid duct.yaml:2: triggers[0]: empty trigger: want one of http, topic, schedule, bucket, kv, event`},
		{"trigger without its name", "triggers:\n  - topic: {filter: x}\n", `invalid duct.yaml:2: triggers[0]: topic: name is required`},
		{"trigger kind without body", "triggers:\n  - schedule:\n", `invalid duct.yaml:2: triggers[0]: want exactly one of http, topic, schedule, bucket, kv, event, got 0 ()`},
		{"trigger kind as string", "triggers: [{topic: uploads}]", `invalid duct.yaml:1: triggers[0].topic: want a mapping of fields, got "uploads"`},
		{"bad time zone", "triggers:\n  - http: {path: /a}\n  - schedule: {cron: '@hourly', timezone: Mars/Base}\n",
			`invalid duct.yaml:3: triggers[1].schedule.timezone: "Mars/Base" is not a known time zone: want an IANA name, like Europe/Paris or UTC`},
		{"same route twice", "triggers:\n  - http: {path: /a}\n  - http: {path: /a, methods: [GET]}\n",
			`invalid duct.yaml:2: triggers: entries 0 and 1 both serve /a for the same methods`},
		{"negative retry attempts", "retry: {attempts: -1}", `invalid duct.yaml:1: retry.attempts: -1: want 0 or more`},
		{"zero max event age", "retry: {maxEventAge: 0s}", `invalid duct.yaml:1: retry.maxEventAge: 0s: want more than 0 (leave the field out for the default)`},
		{"duplicate field", "name: a\ntimeout: 1s\nname: b\n", `invalid duct.yaml:3: field "name" given twice (first on line 1)`},
		{"not a mapping", "- name: a\n", `invalid duct.yaml:1: want a mapping of fields, got a list`},
		{"scalar document", "hello\n", `invalid duct.yaml:1: want a mapping of fields, got "hello"`},
		{"alias", "name: &n abc\nhandler: *n\n", `invalid duct.yaml:2: handler: aliases are not supported`},
		{"merge key", "retry: &r {attempts: 1}\nenv:\n  <<: {A: b}\n", `invalid duct.yaml:3: env: merge keys (<<) are not supported`},
		{"custom tag", "name: !secret abc", `invalid duct.yaml:1: name: tag !secret is not supported`},
		{"binary tag", "name: !!binary YWJj", `invalid duct.yaml:1: name: tag !!binary is not supported`},
		{"two documents", "name: a\n---\nname: b\n", `invalid duct.yaml:2: a second YAML document: duct.yaml holds one`},
		{"empty second document", "name: a\n---\n", `invalid duct.yaml:2: a second YAML document: duct.yaml holds one`},
		{"syntax", "name: a\n  b: c\n", `invalid duct.yaml:2: mapping values are not allowed in this context`},
		{"tabs", "name: a\n\tb: c\n", `invalid duct.yaml:2: found a tab character that violates indentation`},
		{"too large", "name: a\n" + strings.Repeat("# padding\n", 7000), `invalid duct.yaml: 70008 bytes: the limit is 64 KiB`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded: %s", dump(m))
			}
			if err.Error() != tt.want {
				t.Errorf("Parse error:\n got %s\nwant %s", err, tt.want)
			}
			var ie *duct.InvalidError
			if !errors.Is(err, duct.ErrInvalid) || !errors.As(err, &ie) || !strings.HasPrefix(ie.Field, "duct.yaml") {
				t.Errorf("error %#v: want a *duct.InvalidError about duct.yaml", err)
			}
		})
	}
}

func TestApplyOverlays(t *testing.T) {
	base := duct.Function{
		Name:     "base",
		Runtime:  duct.RuntimeNode,
		Handler:  "main",
		Timeout:  duct.Duration(time.Minute),
		Env:      map[string]string{"KEEP": "no", "OLD": "1"},
		Secrets:  []string{"S1"},
		Triggers: []duct.Trigger{{Topic: &duct.TopicTrigger{Name: "old"}}},
		Retry:    &duct.RetryPolicy{Attempts: ptr(5), OnFailure: "dlq", OnSuccess: "done"},
	}
	m, err := Parse([]byte(`
runtime: python
env: {NEW: "2"}
secrets: []
retry: {maxEventAge: 1h, onSuccess: ""}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Apply(base)
	want := duct.Function{
		Name:     "base",
		Runtime:  duct.RuntimePython,
		Handler:  "main",
		Timeout:  duct.Duration(time.Minute),
		Env:      map[string]string{"NEW": "2"},
		Secrets:  []string{},
		Triggers: []duct.Trigger{{Topic: &duct.TopicTrigger{Name: "old"}}},
		Retry:    &duct.RetryPolicy{Attempts: ptr(5), MaxEventAge: duct.Duration(time.Hour), OnFailure: "dlq", OnSuccess: ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Apply:\n got %+v\nwant %+v", got, want)
	}
	// Nothing is shared: changing the result changes neither side.
	*got.Retry.Attempts = 9
	got.Env["NEW"] = "changed"
	if *base.Retry.Attempts != 5 || base.Retry.MaxEventAge != 0 || m.Env["NEW"] != "2" {
		t.Error("Apply shares memory with its inputs")
	}
	var nilM *Manifest
	if !reflect.DeepEqual(nilM.Apply(base), base) || !reflect.DeepEqual((&Manifest{}).Apply(base), base) {
		t.Error("an empty Manifest changed the function")
	}
}

func TestSuggest(t *testing.T) {
	for key, want := range map[string]string{
		"memroy": "memory", "timeuot": "timeout", "Env": "env", "max-instances": "maxInstances",
		"idle_timeout": "idleTimeout", "nmae": "name", "trigger": "triggers", "secret": "secrets",
		"xyz": "", "invocation": "", "concurency": "concurrency", "handle": "handler",
	} {
		if got := suggest(key, topFields); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

// TestMarshalAwkwardStrings: values YAML could misread come back as they
// went in.
func TestMarshalAwkwardStrings(t *testing.T) {
	awkward := []string{
		"", " ", "  lead", "trail  ", "~", "null", "true", "yes", "on", "No", "0x10", "1e3", "010", ".inf",
		"- item", "# comment", "a: b", "a #b", "{x}", "[y]", "*alias", "&anchor", "!tag", "%directive", "@", "`",
		"'single'", `"double"`, "multi\nline", "crlf\r\n", "tab\there", "\x01\x7f", "nel\u0085", "ls\u2028ps\u2029",
		"bom\ufeff", "é ü 世界 🙂", "---", "...", "? q", "| block", "> folded", "30s", "256Mi",
	}
	env := map[string]string{}
	for i, s := range awkward {
		env["V"+strconv.Itoa(i)] = s
	}
	m := &Manifest{Env: env, Command: awkward[1:], Handler: ptr("Handle")} // "" is no argument
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Command and env values are free text; Parse checks them only as
	// far as duct.Function.Validate does (no NUL), so all of these pass.
	got, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Marshal()): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip changed values:\n%s", out)
		for i, s := range awkward {
			if g := got.Env["V"+strconv.Itoa(i)]; g != s {
				t.Errorf("%q came back as %q", s, g)
			}
		}
	}
}
