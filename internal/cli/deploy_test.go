package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duct-dev/duct/internal/api"
)

// TestDeployAndInvoke deploys a function in each runtime, from a folder
// and from a single file, and calls it with duct invoke and plain HTTP.
func TestDeployAndInvoke(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	tests := []struct {
		name   string
		files  map[string]string
		path   string // what to deploy, relative to the temp dir
		args   []string
		fn     string // the function's name
		data   string
		want   string // in the invoke output
		wantGo string // in the plain GET output
	}{
		{name: "node folder", files: map[string]string{"hello-node/index.js": nodeHandler}, path: "hello-node",
			fn: "hello-node", data: `{"n": 1}`, want: `"body":{"n":1}`, wantGo: `"runtime":"node"`},
		{name: "node file", files: map[string]string{"Single_Node.js": nodeHandler}, path: "Single_Node.js",
			fn: "single-node", data: "x", want: `"method":"POST"`, wantGo: `"path":"/"`},
		{name: "python folder", files: map[string]string{"py/main.py": pythonHandler, "py/duct.yaml": "name: snake\nmemory: 128Mi\n"},
			path: "py", fn: "snake", data: "hi", want: "python says hi", wantGo: "python says"},
		{name: "python file", files: map[string]string{"tool.py": pythonHandler}, path: "tool.py", args: []string{"--name", "pytool", "--timeout", "10s"},
			fn: "pytool", data: "there", want: "python says there", wantGo: "python says"},
		{name: "go folder", files: map[string]string{"gofn/handler.go": goHandler}, path: "gofn",
			fn: "gofn", data: "abc", want: "go says / abc", wantGo: "go says /"},
		{name: "go file", files: map[string]string{"other.go": goHandler}, path: "other.go",
			fn: "other", data: "1", want: "go says / 1", wantGo: "go says /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			r := ok(t, server, append([]string{"deploy", filepath.Join(dir, tt.path)}, tt.args...)...)
			url := server + "/fn/" + tt.fn
			if want := tt.fn + ": version 1 serves at " + url; !strings.Contains(r.stdout, want) {
				t.Errorf("deploy printed %q, want %q", r.stdout, want)
			}
			if !strings.Contains(r.stderr, "build") {
				t.Errorf("no progress on stderr: %q", r.stderr)
			}
			r = ok(t, server, "invoke", tt.fn, "--data", tt.data)
			if !strings.Contains(r.stdout, tt.want) {
				t.Errorf("invoke printed %q, want %q", r.stdout, tt.want)
			}
			if status, body := get(t, url); status != 200 || !strings.Contains(body, tt.wantGo) {
				t.Errorf("GET %s = %d %q, want %q", url, status, body, tt.wantGo)
			}
		})
	}
}

func TestDeployJSONFlagsAndRedeploy(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"index.js": `exports.handler = async (req, res) => res.send(process.env.GREETING + " " + process.env.WHO);`,
		"duct.yaml": "name: greeter\nenv: {WHO: world, GREETING: hello}\n"})

	r := ok(t, server, "deploy", dir, "--json", "--env", "GREETING=bonjour", "--memory", "128Mi", "--concurrency", "2", "--max-instances", "3")
	var res api.DeployResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, r.stdout)
	}
	spec := res.Version.Spec
	if res.Version.Function != "greeter" || spec.Memory.String() != "128Mi" || spec.Concurrency != 2 || spec.MaxInstances != 3 {
		t.Errorf("spec = %+v", spec)
	}
	if spec.Env["GREETING"] != "bonjour" || spec.Env["WHO"] != "world" {
		t.Errorf("--env should add to duct.yaml's env: %v", spec.Env)
	}
	if r := ok(t, server, "invoke", "greeter"); r.stdout != "bonjour world" {
		t.Errorf("invoke = %q", r.stdout)
	}
	// The same source and settings make no new version.
	r = ok(t, server, "deploy", dir, "--env", "GREETING=bonjour", "--memory", "128Mi", "--concurrency", "2", "--max-instances", "3")
	if !strings.Contains(r.stdout, "greeter: unchanged, version 1 serves") {
		t.Errorf("redeploy printed %q", r.stdout)
	}
}

func TestDeployBuildFailureShowsLog(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"broken/handler.go": "package function\n\nimport \"net/http\"\n\nfunc Handle(w http.ResponseWriter, r *http.Request) {\n\tundefinedThing()\n}\n",
		"syntax.js":         "exports.handler = async (req, res) => {\n  res.send(\"x\"\n};\n",
	})
	r := run(t, server, "deploy", filepath.Join(dir, "broken"))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"build log:", "| ./handler.go:6:2: undefined: undefinedThing", "duct: deploy broken: build failed: compile failed"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}

	r = run(t, server, "deploy", filepath.Join(dir, "syntax.js"))
	if r.code != 1 || !strings.Contains(r.stderr, "SyntaxError") || !strings.Contains(r.stderr, "duct: deploy syntax: build failed") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if r := run(t, server, "ls", "-q"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("failed deploys left functions: %q", r.stdout)
	}
}

func TestNameFrom(t *testing.T) {
	tests := map[string]string{
		"hello":       "hello",
		"Hello_World": "hello-world",
		"my  func!!":  "my-func",
		"--x--":       "x",
		"2fa":         "2fa",
		"日本":          "",
		"a.b.c":       "a-b-c",
	}
	for in, want := range tests {
		if got := nameFrom(in); got != want {
			t.Errorf("nameFrom(%q) = %q, want %q", in, got, want)
		}
	}
}
