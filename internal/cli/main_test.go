package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/daemon"
)

// testToken is the admin token of servers startServer starts without
// one; run sends it.
const testToken = "cli-test-admin-token"

// startServer runs an in-process Duct on a free loopback port, its data in
// a temporary directory, and returns its URL. It stops at the test's end.
// Its admin token is adminToken, or testToken when that is empty, and
// functions are public unless their spec says otherwise.
func startServer(t *testing.T, adminToken string) string {
	t.Helper()
	if adminToken == "" {
		adminToken = testToken
	}
	d, err := daemon.New(daemon.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), NoSync: true, AdminToken: adminToken, Spares: -1,
		ShutdownTimeout: 5 * time.Second, DefaultInvoke: duct.InvokePublic,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return d.URL()
}

// result is what one run of duct printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// runEnv runs the command line args as Main would, with environ as the
// environment, and returns what it printed.
func runEnv(t *testing.T, environ map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
		getenv: func(k string) string { return environ[k] }}
	code := e.main(t.Context(), args)
	return result{stdout.String(), stderr.String(), code}
}

// run runs duct against server with testToken in DUCT_TOKEN (and no
// HOME: no stored credentials).
func run(t *testing.T, server string, args ...string) result {
	t.Helper()
	return runEnv(t, map[string]string{"DUCT_TOKEN": testToken}, "", append(args, "--server", server)...)
}

// ok runs duct and fails the test unless it exits 0.
func ok(t *testing.T, server string, args ...string) result {
	t.Helper()
	r := run(t, server, args...)
	if r.code != 0 {
		t.Fatalf("duct %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// writeFiles creates files (path → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// eventually retries check until it returns "" or the timeout passes, and
// fails with its last complaint.
func eventually(t *testing.T, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Handlers used across tests, one per runtime.
const (
	nodeHandler = `exports.handler = async (req, res) => {
  console.log("node saw " + req.method + " " + req.path);
  res.json({ runtime: "node", method: req.method, path: req.path, body: req.body });
};
`
	pythonHandler = `def handler(request):
    print("python saw", request.method, request.path)
    return "python says " + request.data.decode() + "\n"
`
	goHandler = `package function

import (
	"fmt"
	"io"
	"net/http"
)

func Handle(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	fmt.Println("go saw", r.Method, r.URL.Path)
	fmt.Fprintf(w, "go says %s %s\n", r.URL.Path, b)
}
`
)

// contextWithCancel returns a context ended by cancel or the test's end.
func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	return ctx, cancel
}
