package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDev runs duct dev on a folder of two functions, checks their URLs
// serve, then edits, breaks and adds functions and watches dev follow.
func TestDev(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"hello/index.js": nodeHandler,
		"greet/main.py":  "def handler(request):\n    return 'first'\n",
		"notes/README":   "not a function",
	})
	ctx, cancel := contextWithCancel(t)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"dev", dir, "--addr", "127.0.0.1:0", "--spares", "0"}, strings.NewReader(""), &stdout, &stderr)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("dev exit %d\nstderr:\n%s", code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatal("dev did not stop")
		}
	}
	t.Cleanup(stop)
	wait := func(what string, cond func() bool) {
		t.Helper()
		eventually(t, 30*time.Second, func() string {
			if cond() {
				return ""
			}
			return what + "\nstdout:\n" + stdout.String() + "\nstderr:\n" + stderr.String()
		})
	}
	wait("no 'Watching' line", func() bool { return strings.Contains(stdout.String(), "Watching ") })

	out := stdout.String()
	urls := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^(\w+)\s+(node|python)\s+(http://127\.0\.0\.1:\d+/fn/\w+)$`).FindAllStringSubmatch(out, -1) {
		urls[m[1]] = m[3]
	}
	if len(urls) != 2 || !strings.HasSuffix(urls["hello"], "/fn/hello") || !strings.HasSuffix(urls["greet"], "/fn/greet") {
		t.Fatalf("dev's table does not list hello and greet:\n%s", out)
	}
	if !strings.Contains(out, "Try: curl "+urls["greet"]) {
		t.Errorf("no curl line for the first function:\n%s", out)
	}
	if status, body := get(t, urls["hello"]); status != 200 || !strings.Contains(body, `"runtime":"node"`) {
		t.Errorf("GET hello = %d %q", status, body)
	}
	if status, body := get(t, urls["greet"]); status != 200 || body != "first" {
		t.Errorf("GET greet = %d %q", status, body)
	}

	// An edit is redeployed.
	writeFiles(t, dir, map[string]string{"greet/main.py": "def handler(request):\n    return 'second, edited'\n"})
	wait("greet was not redeployed", func() bool { _, body := get(t, urls["greet"]); return body == "second, edited" })
	wait("no redeploy message", func() bool { return strings.Contains(stdout.String(), "greet: version 2 serves") })
	if !strings.Contains(stdout.String(), "greet: main.py changed, redeploying") {
		t.Errorf("no change message:\n%s", stdout.String())
	}

	// A broken edit prints the error; the last good version keeps serving.
	writeFiles(t, dir, map[string]string{"hello/index.js": "exports.handler = async (req, res) => {\n"})
	wait("no build error for hello", func() bool {
		return strings.Contains(stderr.String(), "duct: deploy hello: build failed") && strings.Contains(stderr.String(), "SyntaxError")
	})
	if status, _ := get(t, urls["hello"]); status != 200 {
		t.Errorf("after a failed redeploy, GET hello = %d", status)
	}

	// A new folder is deployed.
	writeFiles(t, dir, map[string]string{"fresh/main.py": "def handler(request):\n    return 'new here'\n"})
	fresh := strings.Replace(urls["greet"], "/fn/greet", "/fn/fresh", 1)
	wait("fresh was not deployed", func() bool { _, body := get(t, fresh); return body == "new here" })

	data := regexp.MustCompile(`data in (\S+), removed at exit`).FindStringSubmatch(out)
	stop()
	if data == nil {
		t.Fatalf("no data dir in:\n%s", out)
	}
	if _, err := os.Stat(data[1]); !os.IsNotExist(err) {
		t.Errorf("data dir %s still there after exit (%v)", data[1], err)
	}
}

// TestDevFolderIsAFunction checks that DIR itself deploys when it holds a
// function, and that event functions get a curl line with a body.
func TestDevFolderIsAFunction(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "Solo")
	writeFiles(t, dir, map[string]string{"main.py": "def handler(event, context):\n    return {'got': event}\n", "duct.yaml": "signature: event\n"})
	ctx, cancel := contextWithCancel(t)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"dev", dir, "--addr", "127.0.0.1:0", "--spares", "0"}, strings.NewReader(""), &stdout, &stderr)
	}()
	eventually(t, 30*time.Second, func() string {
		if strings.Contains(stdout.String(), "Watching ") {
			return ""
		}
		return "no 'Watching' line:\n" + stdout.String() + stderr.String()
	})
	m := regexp.MustCompile(`Try: curl -H 'Content-Type: application/json' -d '\{\}' (http://\S+/fn/solo)\n`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no event curl line for solo:\n%s", stdout.String())
	}
	r := ok(t, strings.TrimSuffix(m[1], "/fn/solo"), "invoke", "solo", "--data", `{"a": 1}`)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got["got"] == nil {
		t.Errorf("invoke solo = %q", r.stdout)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dev did not stop")
	}
}

// TestServer runs duct server until interrupted, with an admin token.
func TestServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
		getenv: func(k string) string { return map[string]string{"DUCT_ADMIN_TOKEN": "tok"}[k] }}
	done := make(chan int, 1)
	go func() {
		done <- e.main(ctx, []string{"server", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--spares", "0", "--log-format", "json"})
	}()
	var addr string
	eventually(t, 30*time.Second, func() string {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "duct serving" {
				addr = rec.Addr
				return ""
			}
		}
		return "no 'duct serving' log line:\n" + stderr.String()
	})
	server := "http://" + addr
	if r := runEnv(t, map[string]string{"DUCT_SERVER": server, "DUCT_TOKEN": "tok"}, "", "ls"); r.code != 0 {
		t.Errorf("ls with the token: exit %d %q", r.code, r.stderr)
	}
	if r := runEnv(t, map[string]string{"DUCT_SERVER": server}, "", "ls"); r.code != 1 || !strings.Contains(r.stderr, "unauthorized") {
		t.Errorf("ls without a token: exit %d %q", r.code, r.stderr)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("server exit %d:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop")
	}
}
