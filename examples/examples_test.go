package examples_test

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/bundle"
	"github.com/duct-dev/duct/internal/ducttest"
	"github.com/duct-dev/duct/internal/manifest"
)

// call is one invocation through the gateway and what it must answer.
type call struct {
	name   string   // subtest name
	fn     string   // function
	method string   // HTTP method
	path   string   // after /fn/{fn}
	body   string   // request body
	header []string // request headers, name and value pairs

	status int
	want   map[string]string // response headers
	answer string            // response body, exactly
	log    string            // a line the invocation must log; "" for none
}

// TestExamples deploys every example folder, as `duct dev ./examples`
// would, to one server and invokes each through the gateway.
func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs Go, Node.js and Python functions")
	}
	s := ducttest.Start(t)
	for _, dir := range exampleDirs(t) {
		files := readFiles(t, dir)
		if dir == "slack-bot" {
			// As its README says: store the secret, then list it in
			// duct.yaml.
			setSecret(t, s, "SLACK_SIGNING_SECRET", slackSecret)
			files["duct.yaml"] = uncommentSecrets(t, files["duct.yaml"])
		}
		s.Deploy(dir, files, "")
	}
	// The bot as shipped, without its secret.
	s.Deploy("slack-bot-unset", readFiles(t, "slack-bot"), "")

	var calls []call
	calls = append(calls, helloHTTP("hello-go", "application/json")...)
	calls = append(calls, helloHTTP("hello-node", "application/json; charset=utf-8")...)
	calls = append(calls, helloHTTP("hello-python", "application/json")...)
	calls = append(calls, helloEvent("hello-go-event", "errorString")...)
	calls = append(calls, helloEvent("hello-node-event", "TypeError")...)
	calls = append(calls, helloEvent("hello-python-event", "ValueError")...)
	calls = append(calls, slackCalls(time.Now())...)

	tested := map[string]bool{}
	for _, c := range calls {
		tested[c.fn] = true
		t.Run(c.fn+"/"+c.name, func(t *testing.T) {
			r := s.Invoke(c.fn, c.method, c.path, c.body, c.header...)
			if r.Status != c.status || r.Body != c.answer {
				t.Fatalf("%s /fn/%s%s: got %d %q, want %d %q", c.method, c.fn, c.path, r.Status, r.Body, c.status, c.answer)
			}
			for k, v := range c.want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("header %s: got %q, want %q", k, got, v)
				}
			}
			if c.log != "" {
				waitForLog(t, s, c.fn, r.Header.Get("X-Request-Id"), c.log)
			}
		})
	}
	for _, dir := range exampleDirs(t) {
		if !tested[dir] {
			t.Errorf("example %s is deployed but no call tests it: add some to TestExamples", dir)
		}
	}
}

// helloHTTP are the calls every hello-LANG example answers alike.
func helloHTTP(fn, contentType string) []call {
	runtime := strings.TrimPrefix(fn, "hello-")
	ok := map[string]string{"Content-Type": contentType, "X-Runtime": runtime}
	jsonBody := []string{"Content-Type", "application/json"}
	return []call{
		{name: "query", fn: fn, method: "GET", path: "?name=Ada",
			status: 200, want: ok, answer: `{"greeting":"Hello, Ada"}`, log: "greeting Ada"},
		{name: "json body", fn: fn, method: "POST", path: "/", body: `{"name":"Grace"}`, header: jsonBody,
			status: 200, want: ok, answer: `{"greeting":"Hello, Grace"}`, log: "greeting Grace"},
		{name: "no name", fn: fn, method: "GET",
			status: 200, want: ok, answer: `{"greeting":"Hello, world"}`},
		{name: "bad json", fn: fn, method: "POST", body: `{"name":`, header: jsonBody,
			status: 400, want: map[string]string{"Content-Type": contentType},
			answer: `{"error":"the body must be a JSON object such as {\"name\":\"Ada\"}"}`},
		{name: "bad method", fn: fn, method: "DELETE",
			status: 405, want: map[string]string{"Allow": "GET, POST", "Content-Type": contentType},
			answer: `{"error":"use GET or POST"}`},
	}
}

// helloEvent are the calls every hello-LANG-event example answers alike;
// errorType is the name the runtime gives the handler's error.
func helloEvent(fn, errorType string) []call {
	ok := map[string]string{"Content-Type": "application/json"}
	return []call{
		{name: "json", fn: fn, method: "POST", body: `{"name":"Ada"}`, header: []string{"Content-Type", "application/json"},
			status: 200, want: ok, answer: `{"greeting":"Hello, Ada"}`, log: "greeting Ada"},
		{name: "cloudevent", fn: fn, method: "POST", body: `{"name":"Grace"}`,
			header: []string{
				"Content-Type", "application/json",
				"Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Source", "examples", "Ce-Type", "com.example.greet",
			},
			status: 200, want: ok, answer: `{"greeting":"Hello, Grace"}`, log: "greeting Grace"},
		{name: "no name", fn: fn, method: "POST", body: `{}`,
			status: 500, want: ok,
			answer: `{"errorType":"` + errorType + `","errorMessage":"name is missing: send {\"name\":\"Ada\"}"}`},
	}
}

const slackSecret = "test-secret"

// slackCalls exercise the Slack bot at time now.
func slackCalls(now time.Time) []call {
	form := url.Values{
		"token": {"unused"}, "team_id": {"T0001"}, "channel_id": {"C0001"}, "user_id": {"U0001"},
		"user_name": {"ada"}, "command": {"/weather"}, "text": {"paris"},
		"response_url": {"https://hooks.slack.com/commands/T0001/1/x"},
	}.Encode()
	ts := strconv.FormatInt(now.Unix(), 10)
	stale := strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10)
	formType := []string{"Content-Type", "application/x-www-form-urlencoded"}
	signed := func(secret, ts, body string) []string {
		return append([]string{"X-Slack-Request-Timestamp", ts, "X-Slack-Signature", slackSignature(secret, ts, body)}, formType...)
	}
	text := map[string]string{"Content-Type": "text/plain; charset=utf-8"}
	reply := map[string]string{"Content-Type": "application/json; charset=utf-8"}
	return []call{
		{name: "valid", fn: "slack-bot", method: "POST", body: form, header: signed(slackSecret, ts, form),
			status: 200, want: reply,
			answer: `{"response_type":"ephemeral","text":"Paris: 18°C, light rain in the afternoon."}`,
			log:    "ada ran /weather paris"},
		{name: "usage", fn: "slack-bot", method: "POST", body: "command=%2Fweather&text=",
			header: signed(slackSecret, ts, "command=%2Fweather&text="),
			status: 200, want: reply,
			answer: `{"response_type":"ephemeral","text":"Usage: /weather CITY, e.g. /weather paris"}`},
		{name: "bad signature", fn: "slack-bot", method: "POST", body: form, header: signed("not-the-secret", ts, form),
			status: 401, want: text, answer: "bad X-Slack-Signature\n"},
		{name: "tampered body", fn: "slack-bot", method: "POST", body: strings.Replace(form, "paris", "tokyo", 1),
			header: signed(slackSecret, ts, form),
			status: 401, want: text, answer: "bad X-Slack-Signature\n"},
		{name: "stale timestamp", fn: "slack-bot", method: "POST", body: form, header: signed(slackSecret, stale, form),
			status: 401, want: text, answer: "stale X-Slack-Request-Timestamp\n"},
		{name: "missing headers", fn: "slack-bot", method: "POST", body: form, header: formType,
			status: 401, want: text, answer: "missing X-Slack-Request-Timestamp or X-Slack-Signature\n"},
		{name: "missing signature", fn: "slack-bot", method: "POST", body: form,
			header: append([]string{"X-Slack-Request-Timestamp", ts}, formType...),
			status: 401, want: text, answer: "missing X-Slack-Request-Timestamp or X-Slack-Signature\n"},
		{name: "GET", fn: "slack-bot", method: "GET",
			status: 405, want: map[string]string{"Allow": "POST"}, answer: "use POST\n"},
		{name: "no secret", fn: "slack-bot-unset", method: "POST", body: form, header: signed(slackSecret, ts, form),
			status: 500, want: text, answer: "slack-bot is not configured: set SLACK_SIGNING_SECRET\n",
			log: "SLACK_SIGNING_SECRET is not set: refusing every request"},
	}
}

// setSecret stores a secret on s.
func setSecret(t *testing.T, s *ducttest.Server, name, value string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"value": value})
	r := s.Do("PUT", "/api/v1/secrets/"+name, strings.NewReader(string(body)), "Content-Type", "application/json")
	if r.Status != 201 && r.Status != 200 {
		t.Fatalf("set secret %s: %d %s", name, r.Status, r.Body)
	}
}

// uncommentSecrets turns on the secrets line that slack-bot's duct.yaml
// ships commented out, as its README tells users to.
func uncommentSecrets(t *testing.T, yaml string) string {
	t.Helper()
	const line = "# secrets: [SLACK_SIGNING_SECRET]"
	if !strings.Contains(yaml, "\n"+line) {
		t.Fatalf("slack-bot/duct.yaml has no line %q for its README to tell users to uncomment", line)
	}
	return strings.Replace(yaml, "\n"+line, "\n"+strings.TrimPrefix(line, "# "), 1)
}

// slackSignature signs a request as Slack does.
func slackSignature(secret, ts, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":" + body))
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// waitForLog waits until the invocation's log holds line.
func waitForLog(t *testing.T, s *ducttest.Server, fn, invocation, line string) {
	t.Helper()
	if invocation == "" {
		t.Fatal("the response has no X-Request-Id")
	}
	var got []string
	ducttest.Eventually(t, 5*time.Second, "log line "+strconv.Quote(line), func() bool {
		r := s.Get("/api/v1/functions/" + fn + "/logs?invocation=" + url.QueryEscape(invocation))
		got = got[:0]
		sc := bufio.NewScanner(strings.NewReader(r.Body))
		for sc.Scan() {
			var e duct.LogEntry
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Message != "" {
				got = append(got, e.Message)
				if strings.TrimRight(e.Message, "\n") == line {
					return true
				}
			}
		}
		return false
	})
}

// TestExamplesDocumented keeps every example documented and deployable by
// name: each folder has a README.md that says how to deploy it and a
// duct.yaml naming it after its folder, and the list in README.md names it.
func TestExamplesDocumented(t *testing.T) {
	index, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatalf("examples/README.md: %v", err)
	}
	dirs := exampleDirs(t)
	if len(dirs) == 0 {
		t.Fatal("no examples found")
	}
	for _, dir := range dirs {
		readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil {
			t.Errorf("%s: every example needs a README.md: %v", dir, err)
		} else if deploy := "duct deploy examples/" + dir; !strings.Contains(string(readme), deploy) {
			t.Errorf("%s/README.md does not say how to deploy it (%q)", dir, deploy)
		}
		raw, err := os.ReadFile(filepath.Join(dir, "duct.yaml"))
		if err != nil {
			t.Errorf("%s: every example needs a duct.yaml: %v", dir, err)
			continue
		}
		m, err := manifest.Parse(raw)
		if err != nil {
			t.Errorf("%s/duct.yaml: %v", dir, err)
			continue
		}
		if m.Name == nil || *m.Name != dir {
			t.Errorf("%s/duct.yaml: want name: %s, so that duct dev deploys it under its folder's name", dir, dir)
		}
		if !strings.Contains(string(index), "("+dir+"/)") {
			t.Errorf("examples/README.md does not list %s (want a link to (%s/))", dir, dir)
		}
	}
}

// exampleDirs lists the example folders.
func exampleDirs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(e.Name(), "_") && e.Name() != "testdata" {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}

// readFiles reads an example folder as `duct deploy` would pack it.
func readFiles(t *testing.T, dir string) ducttest.Files {
	t.Helper()
	files := ducttest.Files{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if bundle.DefaultSkip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return files
}
