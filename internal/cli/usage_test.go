package cli

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageErrors checks command lines duct refuses before doing anything:
// exit status 2 and a message naming the problem.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"ok/index.js": nodeHandler})
	fn := filepath.Join(dir, "ok")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"lss"}, `did you mean "ls"?`},
		{[]string{"ls", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"--bogus", "ls"}, "flag provided but not defined"},
		{[]string{"deploy", fn, "--memory", "lots"}, "want a size such as 256Mi"},
		{[]string{"deploy", fn, "--timeout", "soon"}, "want a duration"},
		{[]string{"deploy", fn, "--runtime", "rust"}, "want one of go, node, python, image"},
		{[]string{"deploy", fn, "--name", "Bad_Name"}, `invalid function name "Bad_Name"`},
		{[]string{"deploy", fn, "--name", "api"}, `"api" is reserved`},
		{[]string{"deploy", fn, "--env", "=x"}, "want KEY=VALUE"},
		{[]string{"deploy", fn, "extra"}, `unexpected argument "extra"`},
		{[]string{"invoke"}, "missing function NAME"},
		{[]string{"invoke", "x", "-H", "nocolon"}, "want 'Name: value'"},
		{[]string{"describe"}, "missing function NAME"},
		{[]string{"logs", "x", "--tail", "-1"}, "want a count"},
		{[]string{"rollback", "x", "--to", "-2"}, "want a version number"},
		{[]string{"rm"}, "missing function NAME"},
		{[]string{"completion", "fish"}, `unsupported shell "fish"`},
		{[]string{"tokens"}, "missing subcommand"},
		{[]string{"tokens", "make"}, `unknown subcommand "make"`},
		{[]string{"tokens", "create", "ci"}, "missing --role"},
		{[]string{"tokens", "ls", "--role", "read"}, "--role applies to tokens create"},
		{[]string{"tokens", "rm"}, "missing token ID"},
		{[]string{"secrets", "set"}, "missing secret NAME"},
		{[]string{"secrets", "set", "A", "--value", "x", "--from-file", "f"}, "not both"},
		{[]string{"secrets", "set", "PATH", "--value", "x"}, "reserved"},
		{[]string{"secrets", "ls", "--force"}, "--force applies to secrets rm"},
		{[]string{"login", "extra"}, `unexpected argument "extra"`},
		{[]string{"help", "nope"}, `unknown command "nope"`},
		{[]string{"server", "--addr", "nope"}, "addr"},
		{[]string{"ls", "--server", "ftp://x"}, "want http or https"},
	}
	for _, tt := range tests {
		r := runEnv(t, nil, "", tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("duct %s: exit %d, stderr %q; want 2 and %q", strings.Join(tt.args, " "), r.code, r.stderr, tt.want)
		}
		if r.stdout != "" {
			t.Errorf("duct %s: stdout %q, want nothing", strings.Join(tt.args, " "), r.stdout)
		}
	}
}

func TestBadNamesFromPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"2fa/index.js": nodeHandler, "handlers/fn/duct.yaml": "name: Not-Valid\n", "handlers/fn/main.py": pythonHandler})
	r := runEnv(t, nil, "", "deploy", filepath.Join(dir, "2fa"))
	if r.code != 1 || !strings.Contains(r.stderr, `invalid function name "2fa"`) || !strings.Contains(r.stderr, "give one with --name") {
		t.Errorf("folder 2fa: exit %d, %q", r.code, r.stderr)
	}
	r = runEnv(t, nil, "", "deploy", filepath.Join(dir, "handlers/fn"))
	if r.code != 1 || !strings.Contains(r.stderr, `fn/duct.yaml:1: name: "Not-Valid"`) {
		t.Errorf("duct.yaml name: exit %d, %q", r.code, r.stderr)
	}
	writeFiles(t, dir, map[string]string{"typo/duct.yaml": "memroy: 1Gi\n", "typo/main.py": pythonHandler})
	r = runEnv(t, nil, "", "deploy", filepath.Join(dir, "typo"))
	if r.code != 1 || !strings.Contains(r.stderr, "memroy") {
		t.Errorf("duct.yaml typo: exit %d, %q", r.code, r.stderr)
	}
	r = runEnv(t, nil, "", "deploy", filepath.Join(dir, "missing"))
	if r.code != 1 || !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("missing path: exit %d, %q", r.code, r.stderr)
	}
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"index.js": nodeHandler})
	for _, args := range [][]string{{"deploy", dir, "--name", "x"}, {"ls"}, {"invoke", "x"}, {"logs", "x"}} {
		r := run(t, server, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "cannot reach the Duct server at "+server) ||
			!strings.Contains(r.stderr, "duct: "+args[0]) || !strings.Contains(r.stderr, "is a server running there?") {
			t.Errorf("duct %s: exit %d, stderr:\n%s", args[0], r.code, r.stderr)
		}
	}
	// DUCT_SERVER picks the server when --server is not given.
	r := runEnv(t, map[string]string{"DUCT_SERVER": server}, "", "ls")
	if r.code != 1 || !strings.Contains(r.stderr, server) {
		t.Errorf("DUCT_SERVER: exit %d, %q", r.code, r.stderr)
	}
}

func TestInvokeNon2xx(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"teapot.py": "def handler(request):\n    return ('short and stout', 418, {'X-Kind': 'teapot'})\n"})
	ok(t, server, "deploy", filepath.Join(dir, "teapot.py"))
	r := run(t, server, "invoke", "teapot", "-i", "-X", "put", "-d", "@"+filepath.Join(dir, "teapot.py"))
	if r.code != 1 || !strings.Contains(r.stdout, "short and stout") || !strings.Contains(r.stderr, "the function answered 418") {
		t.Errorf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "418") || !strings.Contains(r.stdout, "X-Kind: teapot") {
		t.Errorf("--include: %q", r.stdout)
	}
	r = run(t, server, "invoke", "absent")
	if r.code != 1 || !strings.Contains(r.stdout, `no function named \"absent\"`) || !strings.Contains(r.stderr, "the server answered 404") {
		t.Errorf("absent: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	// --data - reads stdin.
	var out, errOut syncBuffer
	code := Main(t.Context(), []string{"invoke", "teapot", "--data", "-", "--server", server}, strings.NewReader("tea"), &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "short and stout") {
		t.Errorf("--data -: exit %d %q %q", code, out.String(), errOut.String())
	}
}

// TestToken checks that DUCT_TOKEN reaches a server that requires one.
func TestToken(t *testing.T) {
	t.Parallel()
	server := startServer(t, "sesame")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"index.js": nodeHandler})
	with := func(tok string) map[string]string { return map[string]string{"DUCT_SERVER": server, "DUCT_TOKEN": tok} }
	if r := runEnv(t, with(""), "", "ls"); r.code != 1 || !strings.Contains(r.stderr, "unauthorized") {
		t.Errorf("no token: exit %d %q", r.code, r.stderr)
	}
	if r := runEnv(t, with("wrong"), "", "deploy", dir, "--name", "locked"); r.code != 1 || !strings.Contains(r.stderr, "not valid") {
		t.Errorf("wrong token: exit %d %q", r.code, r.stderr)
	}
	if r := runEnv(t, with("sesame"), "", "deploy", dir, "--name", "locked"); r.code != 0 {
		t.Errorf("right token: exit %d %q", r.code, r.stderr)
	}
	if r := runEnv(t, with("sesame"), "", "ls", "-q"); r.stdout != "locked\n" {
		t.Errorf("right token: ls -q = %q (%s)", r.stdout, r.stderr)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	r := runEnv(t, nil, "", "help")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
		t.Fatalf("help: exit %d %q", r.code, r.stderr)
	}
	for _, c := range commands() {
		name := c.info().name
		if !strings.Contains(r.stdout, "  "+name+" ") {
			t.Errorf("overview does not list %s", name)
		}
		for _, args := range [][]string{{name, "-h"}, {name, "--help"}, {"help", name}} {
			r := runEnv(t, nil, "", args...)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: duct "+name) || !strings.Contains(r.stdout, "Examples:\n  ") || !strings.Contains(r.stdout, "duct "+name) {
				t.Errorf("duct %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
			}
		}
	}
	if r := runEnv(t, nil, "", "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
		t.Errorf("--help: exit %d", r.code)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	r := ok(t, server, "version")
	if !strings.HasPrefix(r.stdout, "duct ") || !strings.Contains(r.stdout, "server ") || !strings.Contains(r.stdout, server) {
		t.Errorf("version:\n%s", r.stdout)
	}
	var v struct {
		Client string
		Server struct{ Version string }
	}
	mustJSON(t, ok(t, server, "version", "--json").stdout, &v)
	if v.Client == "" || v.Server.Version != v.Client {
		t.Errorf("version --json = %+v", v)
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh"} {
		r := runEnv(t, nil, "", "completion", shell)
		if r.code != 0 {
			t.Fatalf("completion %s: exit %d %q", shell, r.code, r.stderr)
		}
		for _, want := range []string{"deploy", "--min-instances", "rollback", "ls -q", "go node python image"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("completion %s lacks %q", shell, want)
			}
		}
		bin, err := exec.LookPath(shell)
		if err != nil {
			continue // the script's syntax is checked where the shell is installed
		}
		script := filepath.Join(t.TempDir(), "duct."+shell)
		if err := os.WriteFile(script, []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-n", script).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", shell, err, out)
		}
	}
}
