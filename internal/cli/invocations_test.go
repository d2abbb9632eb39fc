package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duct-dev/duct"
)

// TestInvokeAsync queues invocations with invoke --async and follows them
// with invocations get.
func TestInvokeAsync(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"greet/index.js":   "exports.handler = async (req, res) => res.send(\"hello \" + req.body);\n",
		"broken/index.js":  "exports.handler = async (req, res) => res.status(500).send(\"no\");\n",
		"broken/duct.yaml": "retry: {attempts: 0}\n",
	})
	ok(t, server, "deploy", filepath.Join(dir, "greet"))
	ok(t, server, "deploy", filepath.Join(dir, "broken"))

	r := ok(t, server, "invoke", "greet", "--async", "--data", "Ada")
	id := strings.TrimSpace(r.stdout)
	if len(id) != 28 || !strings.Contains(r.stderr, "duct invocations get "+id+" --wait") || !strings.Contains(r.stderr, server+"/api/v1/invocations/"+id) {
		t.Fatalf("invoke --async: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	r = ok(t, server, "invocations", "get", id, "--wait")
	for _, want := range []string{"Status:", "succeeded", "Attempts:", "1 of 3", "POST /", "hello Ada"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("invocations get --wait: no %q in\n%s", want, r.stdout)
		}
	}
	var inv duct.Invocation
	mustJSON(t, ok(t, server, "invocations", "get", id, "--json").stdout, &inv)
	if inv.ID != id || inv.Status != duct.InvocationSucceeded || inv.Result == nil || inv.Result.Body != "hello Ada" {
		t.Errorf("--json: %+v", inv)
	}

	var a struct{ ID, Location, URL string }
	mustJSON(t, ok(t, server, "invoke", "broken", "--async", "--json", "-H", "Idempotency-Key: k1").stdout, &a)
	if a.ID == "" || a.Location != "/api/v1/invocations/"+a.ID || a.URL != server+a.Location {
		t.Fatalf("invoke --async --json: %+v", a)
	}
	var again struct{ ID string }
	mustJSON(t, ok(t, server, "invoke", "broken", "--async", "--json", "-H", "Idempotency-Key: k1").stdout, &again)
	if again.ID != a.ID {
		t.Errorf("the same idempotency key gave ids %s and %s", a.ID, again.ID)
	}
	r = run(t, server, "invocations", "get", a.ID, "--wait")
	if r.code != 1 || !strings.Contains(r.stdout, "failed") || !strings.Contains(r.stdout, "the function answered 500") {
		t.Errorf("a failed invocation: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if json.Valid([]byte(r.stdout)) {
		t.Error("the record is shown for people without --json")
	}

	for _, args := range [][]string{
		{"invocations"}, {"invocations", "ls"}, {"invocations", "get"}, {"invocations", "get", id, "--timeout", "1s"},
		{"invoke", "greet", "--async", "--include"}, {"invoke", "greet", "--json"},
	} {
		if r := run(t, server, args...); r.code != 2 {
			t.Errorf("duct %s: exit %d, want 2 (%s)", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if r := run(t, server, "invocations", "get", "0123456789abcdef"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("unknown invocation: exit %d, %q", r.code, r.stderr)
	}
}
