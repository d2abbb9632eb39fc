package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/client"
)

// TestManageFunctions walks a function through two versions, a rollback
// and removal, reading it back with and without --json.
func TestManageFunctions(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	dir := t.TempDir()
	src := filepath.Join(dir, "svc")
	writeFiles(t, dir, map[string]string{"svc/main.py": "def handler(request):\n    return 'one'\n"})
	ok(t, server, "deploy", src)
	writeFiles(t, dir, map[string]string{"svc/main.py": "def handler(request):\n    return 'two'\n"})
	ok(t, server, "deploy", src, "--memory", "64Mi")
	if r := ok(t, server, "invoke", "svc"); r.stdout != "two" {
		t.Fatalf("invoke = %q, want two", r.stdout)
	}

	// ls
	r := ok(t, server, "ls")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[1], "svc") || !strings.Contains(lines[1], "python") ||
		!strings.Contains(lines[1], server+"/fn/svc") {
		t.Errorf("ls:\n%s", r.stdout)
	}
	var fns []duct.FunctionInfo
	mustJSON(t, ok(t, server, "ls", "--json").stdout, &fns)
	if len(fns) != 1 || fns[0].Name != "svc" || fns[0].Active == nil || fns[0].Active.Number != 2 || fns[0].Latest != 2 {
		t.Errorf("ls --json = %+v", fns)
	}
	if r := ok(t, server, "ls", "-q"); r.stdout != "svc\n" {
		t.Errorf("ls -q = %q", r.stdout)
	}

	// describe
	r = ok(t, server, "describe", "svc")
	for _, want := range []string{"Name:", "svc", "Version:", "2 serving (latest 2)", "Runtime:", "python", "Memory:", "64Mi", "Handler:", "handler in main.py"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("describe lacks %q:\n%s", want, r.stdout)
		}
	}
	var fi duct.FunctionInfo
	mustJSON(t, ok(t, server, "describe", "svc", "--json").stdout, &fi)
	if fi.Name != "svc" || fi.Active == nil || fi.Active.Spec.Memory != 64*duct.MiB || fi.URL != server+"/fn/svc" {
		t.Errorf("describe --json = %+v", fi)
	}

	// versions
	r = ok(t, server, "versions", "svc")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "VERSION") || strings.Contains(lines[1], "*") || !strings.Contains(lines[2], "*") {
		t.Errorf("versions:\n%s", r.stdout)
	}
	var vs []client.VersionInfo
	mustJSON(t, ok(t, server, "versions", "svc", "--json").stdout, &vs)
	if len(vs) != 2 || vs[0].Number != 1 || vs[0].Active || !vs[1].Active {
		t.Errorf("versions --json = %+v", vs)
	}

	// rollback
	if r := ok(t, server, "rollback", "svc"); r.stdout != "svc: version 1 serves\n" {
		t.Errorf("rollback printed %q", r.stdout)
	}
	if r := ok(t, server, "invoke", "svc"); r.stdout != "one" {
		t.Errorf("after rollback, invoke = %q, want one", r.stdout)
	}
	var v duct.Version
	mustJSON(t, ok(t, server, "rollback", "svc", "--to", "2", "--json").stdout, &v)
	if v.Number != 2 {
		t.Errorf("rollback --to 2 --json = %+v", v)
	}
	if r := ok(t, server, "invoke", "svc"); r.stdout != "two" {
		t.Errorf("after rollback --to 2, invoke = %q, want two", r.stdout)
	}
	if r := run(t, server, "rollback", "svc", "--to", "9"); r.code != 1 || !strings.Contains(r.stderr, "duct: rollback svc: version 9") {
		t.Errorf("rollback --to 9: exit %d, %q", r.code, r.stderr)
	}

	// rm
	if r := ok(t, server, "rm", "svc"); r.stdout != "svc: removed\n" {
		t.Errorf("rm printed %q", r.stdout)
	}
	if r := run(t, server, "describe", "svc"); r.code != 1 || !strings.Contains(r.stderr, "duct: describe svc:") || !strings.Contains(r.stderr, "not found") {
		t.Errorf("describe after rm: exit %d, %q", r.code, r.stderr)
	}
	if r := run(t, server, "rm", "svc"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("second rm: exit %d, %q", r.code, r.stderr)
	}
	if status, _ := get(t, server+"/fn/svc"); status != 404 {
		t.Errorf("GET after rm = %d, want 404", status)
	}
	if r := ok(t, server, "ls", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("ls --json with nothing = %q, want []", r.stdout)
	}
	if r := ok(t, server, "ls"); r.stdout != "" || !strings.Contains(r.stderr, "No functions") {
		t.Errorf("empty ls: %+v", r)
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON (%v):\n%s", err, s)
	}
}
