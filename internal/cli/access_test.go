package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// echoAuth answers with the Authorization header it was given.
const echoAuth = `exports.handler = async (req, res) => res.send("auth=" + (req.get("authorization") || "none"));`

// TestLoginTokensSecrets drives the access commands against a server:
// login stores a token (mode 0600) that later commands send; tokens are
// made, listed and revoked; invoke sends the token to a token function
// only; secrets are set, listed and removed.
func TestLoginTokensSecrets(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	config := t.TempDir()
	environ := map[string]string{"DUCT_SERVER": server, "XDG_CONFIG_HOME": config}
	duct := func(stdin string, args ...string) result {
		t.Helper()
		return runEnv(t, environ, stdin, args...)
	}
	want := func(r result, code int, out, errOut string) {
		t.Helper()
		if r.code != code || !strings.Contains(r.stdout, out) || !strings.Contains(r.stderr, errOut) {
			t.Fatalf("exit %d, want %d with %q on stdout and %q on stderr\nstdout:\n%s\nstderr:\n%s", r.code, code, out, errOut, r.stdout, r.stderr)
		}
	}

	want(duct("", "whoami"), 1, "", "duct login")
	want(duct("", "login", "--token", "wrong"), 1, "", "not valid")
	creds := filepath.Join(config, "duct", "credentials.json")
	if _, err := os.Stat(creds); !os.IsNotExist(err) {
		t.Fatalf("a refused token was stored (%v)", err)
	}
	want(duct(testToken+"\n", "login"), 0, "Logged in to "+server+" as DUCT_ADMIN_TOKEN (role admin)", "")
	st, err := os.Stat(creds)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, %v; want mode 0600", st, err)
	}
	if b, _ := os.ReadFile(creds); !strings.Contains(string(b), server) || !strings.Contains(string(b), testToken) {
		t.Fatalf("credentials file:\n%s", b)
	}
	want(duct("", "whoami"), 0, "DUCT_ADMIN_TOKEN (role admin", "")

	// Tokens.
	r := duct("", "tokens", "create", "caller", "--role", "invoke")
	want(r, 0, "duct_", "shown only this once")
	invokeToken := strings.TrimSpace(r.stdout)
	want(duct("", "tokens", "create", "x"), 2, "", "missing --role")
	want(duct("", "tokens", "create", "x", "--role", "root"), 2, "", "want one of admin, deploy, invoke, read")
	ls := duct("", "tokens", "ls")
	want(ls, 0, "caller", "")
	if !strings.Contains(ls.stdout, "invoke") || strings.Contains(ls.stdout, invokeToken) {
		t.Errorf("tokens ls:\n%s", ls.stdout)
	}
	id := strings.TrimPrefix(invokeToken, "duct_")[:12]

	// invoke sends the token to a token function, and never to a public
	// one, whose code would see it.
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"echo/index.js": echoAuth})
	want(duct("", "deploy", filepath.Join(dir, "echo"), "--name", "locked", "--invoke", "token"), 0, "locked: version 1", "")
	want(duct("", "deploy", filepath.Join(dir, "echo"), "--name", "open"), 0, "open: version 1", "")
	want(duct("", "invoke", "locked"), 0, "auth=none", "")
	want(duct("", "invoke", "open"), 0, "auth=none", "")
	environ["DUCT_TOKEN"] = invokeToken // cannot describe: sent as made for invoking
	want(duct("", "invoke", "locked"), 0, "auth=none", "")
	want(duct("", "ls"), 1, "", "role invoke")
	delete(environ, "DUCT_TOKEN")

	// Secrets.
	want(duct("first value\n", "secrets", "set", "API_KEY"), 0, "API_KEY: set", "")
	file := filepath.Join(dir, "value")
	os.WriteFile(file, []byte("from a file"), 0o600)
	want(duct("", "secrets", "set", "FILE_KEY", "--from-file", file), 0, "FILE_KEY: set", "")
	want(duct("", "secrets", "set", "FLAG_KEY", "--value", "from a flag"), 0, "FLAG_KEY: set", "")
	want(duct("", "secrets", "set", "bad-name", "--value", "x"), 2, "", "not a valid secret name")
	want(duct("", "secrets", "set", "EMPTY"), 2, "", "empty")
	writeFiles(t, dir, map[string]string{"user/index.js": `exports.handler = async (req, res) => res.send(process.env.API_KEY);`,
		"user/duct.yaml": "secrets: [API_KEY]\n"})
	want(duct("", "deploy", filepath.Join(dir, "user")), 0, "user: version 1", "")
	want(duct("", "invoke", "user"), 0, "first value", "")
	sl := duct("", "secrets", "ls")
	want(sl, 0, "API_KEY", "")
	if !strings.Contains(sl.stdout, "user") || strings.Contains(sl.stdout, "first value") {
		t.Errorf("secrets ls:\n%s", sl.stdout)
	}
	want(duct("", "secrets", "rm", "API_KEY"), 1, "", "--force")
	want(duct("", "secrets", "rm", "API_KEY", "FILE_KEY", "--force"), 0, "API_KEY: deleted\nFILE_KEY: deleted", "")

	want(duct("", "tokens", "rm", id), 0, id+": revoked", "")
	want(duct("", "logout"), 0, "Logged out of "+server, "")
	want(duct("", "whoami"), 1, "", "duct login")
	want(duct("", "logout"), 0, "Not logged in", "")
}
