package async_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/ducttest"
)

// TestCrashRestart kills a real duct server (SIGKILL) while asynchronous
// invocations are queued and running, starts it again on the same data
// directory, and checks that every invocation that got its 202 runs to
// the end, those cut short again with a higher attempt count.
func TestCrashRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds duct and runs it as a separate process")
	}
	bin := filepath.Join(t.TempDir(), "duct")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/duct-dev/duct/cmd/duct").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The function reports each attempt's start and end to this server
	// on the host (its sandbox has the host's network).
	var mu sync.Mutex
	started, done := map[string]int{}, map[string]int{}
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		what, id, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		mu.Lock()
		if what == "start" {
			started[id]++
		} else {
			done[id]++
		}
		mu.Unlock()
	}))
	defer cb.Close()
	count := func(m map[string]int) int {
		mu.Lock()
		defer mu.Unlock()
		return len(m)
	}

	const token = "crash-test-admin-token"
	dir := t.TempDir()
	addr := freeAddr(t)
	srv := &process{t: t, bin: bin, addr: addr, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "server.log"), token: token}
	srv.start()
	defer srv.stop()

	spec := fmt.Sprintf(`{"network": "outbound", "maxInstances": 2, "invoke": "public", "retry": {"attempts": 2}, "env": {"CALLBACK": %q}}`, cb.URL)
	srv.deploy("tick", ducttest.Files{"index.js": `
exports.handler = async (req, res) => {
  const id = req.get("x-duct-invocation-id");
  await fetch(process.env.CALLBACK + "/start/" + id, {method: "POST"});
  await new Promise(r => setTimeout(r, 400));
  await fetch(process.env.CALLBACK + "/done/" + id, {method: "POST"});
  res.send("done " + id);
};`}, spec)

	const n = 16
	ids := make([]string, n)
	for i := range ids {
		req, _ := http.NewRequest("POST", "http://"+addr+"/fn/tick", strings.NewReader(fmt.Sprintf(`{"n": %d}`, i)))
		req.Header.Set("Prefer", "respond-async")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var a struct{ ID string }
		json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || a.ID == "" {
			t.Fatalf("submission %d: %s", i, resp.Status)
		}
		ids[i] = a.ID
	}
	// Two run at a time (maxInstances): kill while some run and most wait.
	ducttest.Eventually(t, 30*time.Second, "attempts to start", func() bool { return count(started) >= 2 })
	srv.kill()
	mu.Lock()
	cut := map[string]bool{}
	for id := range started {
		if done[id] == 0 {
			cut[id] = true
		}
	}
	finishedBefore := len(done)
	mu.Unlock()
	t.Logf("killed with %d of %d invocations done, %d running", finishedBefore, n, len(cut))

	srv.start()
	deadline := time.Now().Add(60 * time.Second)
	for count(done) < n {
		if time.Now().After(deadline) {
			for _, id := range ids {
				inv := srv.invocation(id)
				t.Logf("%s: %s, %d attempts, next %s, error %q, history %+v", id, inv.Status, inv.Attempts, inv.NextAttemptAt, inv.Error, inv.History)
			}
			t.Fatalf("%d of %d invocations ran to their end", count(done), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range ids {
		var inv duct.Invocation
		ducttest.Eventually(t, 10*time.Second, "invocation "+id+" to be recorded as done", func() bool {
			inv = srv.invocation(id)
			return inv.Status.Final()
		})
		if inv.Status != duct.InvocationSucceeded {
			t.Errorf("invocation %s: %s after %d attempts: %s", id, inv.Status, inv.Attempts, inv.Error)
		}
		if cut[id] && inv.Attempts < 2 {
			t.Errorf("invocation %s was cut short by the kill, yet its record shows %d attempt(s)", id, inv.Attempts)
		}
	}
}

// process is a duct server run from its binary.
type process struct {
	t                           *testing.T
	bin, addr, data, log, token string
	cmd                         *exec.Cmd
	exited                      chan struct{} // closed when cmd has exited
}

func (p *process) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(p.bin, "server", "--addr", p.addr, "--data", p.data, "--spares", "0")
	p.cmd.Env = append(os.Environ(), "DUCT_ADMIN_TOKEN="+p.token)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := make(chan struct{})
	p.exited = exited
	go func() {
		p.cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			out, _ := os.ReadFile(p.log)
			if bytes.Contains(out, []byte("--insecure-no-sandbox")) {
				p.t.Skipf("this host cannot sandbox:\n%s", out)
			}
			p.t.Fatalf("duct server exited:\n%s", out)
		default:
		}
		if resp, err := http.Get("http://" + p.addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatal("duct server did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop shuts the server down gracefully, and shows its log if the test
// failed.
func (p *process) stop() {
	if p.cmd != nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if p.t.Failed() {
		out, _ := os.ReadFile(p.log)
		p.t.Logf("server log:\n%s", out)
	}
}

func (p *process) api(method, path string, body io.Reader, contentType string) (int, []byte) {
	p.t.Helper()
	req, _ := http.NewRequest(method, "http://"+p.addr+path, body)
	req.Header.Set("Authorization", "Bearer "+p.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (p *process) deploy(name string, files ducttest.Files, spec string) {
	p.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormField("spec")
	io.WriteString(w, spec)
	w, _ = mw.CreateFormFile("source", "source.tar.gz")
	w.Write(ducttest.Archive(p.t, files))
	mw.Close()
	if status, b := p.api("POST", "/api/v1/functions/"+name+"/versions", &body, mw.FormDataContentType()); status >= 300 {
		p.t.Fatalf("deploy %s: %d %s", name, status, b)
	}
}

func (p *process) invocation(id string) duct.Invocation {
	p.t.Helper()
	status, b := p.api("GET", "/api/v1/invocations/"+id, nil, "")
	var inv duct.Invocation
	if status != 200 || json.Unmarshal(b, &inv) != nil {
		p.t.Fatalf("GET invocation %s: %d %s", id, status, b)
	}
	return inv
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
