package gateway_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/ducttest"
)

// The abuse suite deploys hostile functions beside a well-behaved one. The
// hostile ones must fail with clear errors or be contained; the normal one
// must keep answering within its usual latency; nothing may leak between
// them. It needs the sandbox (root, user namespaces, cgroups).

// hostile is a Python function that misbehaves as asked by its path.
var hostile = ducttest.Files{"main.py": `
import os, time, socket, json

def handler(request):
    what = request.path.strip("/")
    if what == "memory":
        hog = []
        while True:
            hog.append(bytearray(16 << 20))
    if what == "fork":
        n = 0
        try:
            while n < 100000:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                n += 1
        except OSError as e:
            return {"forked": n, "error": e.strerror}
        return {"forked": n}
    if what == "spin":
        while True:
            pass
    if what == "tmp":
        written = 0
        try:
            with open("/tmp/fill", "wb") as f:
                while True:
                    f.write(b"x" * (1 << 20))
                    f.flush()
                    written += 1 << 20
        except OSError as e:
            return {"written": written, "error": e.strerror}
    if what == "fds":
        held = []
        try:
            while True:
                held.append(open("/dev/null"))
        except OSError as e:
            return {"opened": len(held), "error": e.strerror}
    if what == "daemon":
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sleep", ["sleep", "317"])
            os._exit(0)
        os.wait()
        return {"daemonized": True}
    if what == "snoop":
        found = {"environ": [], "processes": 0}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            found["processes"] += 1
            try:
                with open("/proc/%s/environ" % pid, "rb") as f:
                    found["environ"].append(f.read().decode(errors="replace"))
            except OSError:
                pass
        found["tmp"] = os.listdir("/tmp")
        found["root"] = sorted(os.listdir("/"))
        found["home"] = sorted(os.listdir("/root")) if os.path.isdir("/root") else []
        try:
            with open("/fn/main.py", "a") as f:
                f.write("# tampered")
            found["wrote_code"] = True
        except OSError as e:
            found["wrote_code"] = e.strerror
        port = int(request.args.get("port", "0"))
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", port))
            found["connect"] = "connected"
        except OSError as e:
            found["connect"] = str(e)
        return found
    return "ok"
`}

var normal = ducttest.Files{"index.js": `
require("fs").writeFileSync("/tmp/normal-marker", "mine");
exports.handler = async (req, res) => res.send("normal " + process.env.NORMAL_SECRET.length);
`}

// serving checks the normal function keeps answering quickly while fn
// runs, and returns what fn answered.
func serving(t *testing.T, s *ducttest.Server, fn func() ducttest.Response) ducttest.Response {
	t.Helper()
	var wg sync.WaitGroup
	var got ducttest.Response
	wg.Add(1)
	go func() {
		defer wg.Done()
		got = fn()
	}()
	deadline := time.Now().Add(1500 * time.Millisecond)
	var worst time.Duration
	for time.Now().Before(deadline) {
		start := time.Now()
		r := s.Invoke("normal", "GET", "/", "")
		d := time.Since(start)
		if r.Status != 200 || !strings.HasPrefix(r.Body, "normal ") {
			t.Errorf("the normal function answered %d %q during the abuse", r.Status, r.Body)
			break
		}
		worst = max(worst, d)
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	if worst > 250*time.Millisecond {
		t.Errorf("the normal function took up to %s to answer during the abuse", worst)
	}
	return got
}

func sandboxed(t *testing.T, s *ducttest.Server) {
	t.Helper()
	if !s.Sandboxed() {
		t.Skip("this host cannot sandbox (not root, no user namespaces or no cgroups)")
	}
}

func TestAbuse(t *testing.T) {
	s := ducttest.Start(t)
	sandboxed(t, s)
	s.Deploy("normal", normal, `{"env": {"NORMAL_SECRET": "normal-secret-value-1234"}}`)
	s.Deploy("hostile", hostile, `{"memory": "128Mi", "timeout": "2s", "concurrency": 1, "maxInstances": 4}`)
	if r := s.Invoke("normal", "GET", "/", ""); r.Status != 200 {
		t.Fatalf("normal: %d %s", r.Status, r.Body)
	}

	t.Run("memory bomb", func(t *testing.T) {
		r := serving(t, s, func() ducttest.Response { return s.Invoke("hostile", "GET", "/memory", "") })
		if r.Status != 502 || !strings.Contains(r.Body, "memory limit") {
			t.Fatalf("memory bomb answered %d %s", r.Status, r.Body)
		}
	})
	t.Run("fork bomb", func(t *testing.T) {
		r := serving(t, s, func() ducttest.Response { return s.Invoke("hostile", "GET", "/fork", "") })
		var got struct {
			Forked int
			Error  string
		}
		json.Unmarshal([]byte(r.Body), &got)
		// Contained either by the process limit (fork fails) or by the
		// memory limit the forked interpreters share (the instance dies).
		pidLimit := r.Status == 200 && got.Forked < 1000 && got.Error != ""
		memLimit := r.Status == 502 && strings.Contains(r.Body, "memory limit")
		if !pidLimit && !memLimit {
			t.Fatalf("fork bomb: %d %s", r.Status, r.Body)
		}
	})
	t.Run("cpu spin past the timeout", func(t *testing.T) {
		start := time.Now()
		r := serving(t, s, func() ducttest.Response { return s.Invoke("hostile", "GET", "/spin", "") })
		if r.Status != 504 || time.Since(start) > 3500*time.Millisecond {
			t.Fatalf("spin: %d after %s: %s", r.Status, time.Since(start), r.Body)
		}
	})
	t.Run("filling /tmp", func(t *testing.T) {
		r := serving(t, s, func() ducttest.Response { return s.Invoke("hostile", "GET", "/tmp", "") })
		var got struct {
			Written int64
			Error   string
		}
		json.Unmarshal([]byte(r.Body), &got)
		if r.Status == 200 && (got.Written > 64<<20 || got.Error == "") {
			t.Fatalf("/tmp took %d bytes: %s", got.Written, r.Body)
		}
		if r.Status != 200 && !strings.Contains(r.Body, "memory limit") {
			t.Fatalf("filling /tmp: %d %s", r.Status, r.Body)
		}
	})
	t.Run("exhausting file descriptors", func(t *testing.T) {
		r := serving(t, s, func() ducttest.Response { return s.Invoke("hostile", "GET", "/fds", "") })
		var got struct {
			Opened int
			Error  string
		}
		json.Unmarshal([]byte(r.Body), &got)
		if r.Status != 200 || got.Opened > 4096 || got.Error == "" {
			t.Fatalf("fds: %d %s", r.Status, r.Body)
		}
	})
	t.Run("daemon outliving its instance", func(t *testing.T) {
		r := s.Invoke("hostile", "GET", "/daemon", "")
		if r.Status != 200 {
			t.Fatalf("daemon: %d %s", r.Status, r.Body)
		}
		// The grandchild execs sleep after the handler has answered.
		ducttest.Eventually(t, 5*time.Second, "the daemonized process to start", func() bool { return processWithArg("317") })
		s.ScaleToZero("hostile")
		ducttest.Eventually(t, 5*time.Second, "the daemonized process gone", func() bool { return !processWithArg("317") })
	})
	t.Run("snooping on others", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(s.Addr())
		r := s.Invoke("hostile", "GET", "/snoop?port="+port, "")
		if r.Status != 200 {
			t.Fatalf("snoop: %d %s", r.Status, r.Body)
		}
		if strings.Contains(r.Body, "normal-secret-value") {
			t.Error("another function's environment is readable")
		}
		if strings.Contains(r.Body, "normal-marker") {
			t.Error("another instance's /tmp is visible")
		}
		var got struct {
			Processes int
			Root      []string
			Home      []string
			WroteCode any `json:"wrote_code"`
			Connect   string
		}
		json.Unmarshal([]byte(r.Body), &got)
		if got.Processes > 6 {
			t.Errorf("the function sees %d processes", got.Processes)
		}
		for _, d := range got.Root {
			if d == "home" || d == "var" || d == "data" || d == filepath.Base(s.Config.DataDir) {
				t.Errorf("host directory /%s is visible", d)
			}
		}
		// /root exists only to hold an exposed interpreter (a version
		// manager's Python), nothing else of the host's.
		for _, d := range got.Home {
			if d != ".pyenv" {
				t.Errorf("host file /root/%s is visible", d)
			}
		}
		if got.WroteCode == true {
			t.Error("the function could write into its own code")
		}
		if got.Connect == "connected" {
			t.Error("the function reached the server's port")
		}
		t.Logf("snoop saw: %s", r.Body)
	})
}

// processWithArg reports whether a host process runs "sleep arg".
func processWithArg(arg string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && string(b) == "sleep\x00"+arg+"\x00" {
			return true
		}
	}
	return false
}

// TestSelfInvocationLoop: a function that calls itself through the gateway
// is stopped by its own concurrency cap: the innermost call finds no free
// instance, waits out the queue timeout, gets 429, and the chain unwinds.
func TestSelfInvocationLoop(t *testing.T) {
	s := ducttest.Start(t, func(c *daemon.Config) { c.QueueTimeout = 500 * time.Millisecond })
	sandboxed(t, s)
	s.Deploy("normal", normal, `{"env": {"NORMAL_SECRET": "x"}}`)
	loop := ducttest.Files{"main.py": `
import os, urllib.request, urllib.error

def handler(request):
    depth = int(request.args.get("depth", "0"))
    url = os.environ["SELF"] + "?depth=%d" % (depth + 1)
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.read().decode(), 200
    except urllib.error.HTTPError as e:
        return "stopped at depth %d by %d" % (depth + 1, e.code), 200
`}
	s.Deploy("loop", loop, fmt.Sprintf(`{"network": "outbound", "maxInstances": 3, "timeout": "30s", "env": {"SELF": %q}}`, s.URL+"/fn/loop"))
	start := time.Now()
	r := serving(t, s, func() ducttest.Response { return s.Invoke("loop", "GET", "/", "") })
	if r.Status != 200 || !strings.Contains(r.Body, "stopped at depth 3 by 429") {
		t.Fatalf("loop: %d %q after %s", r.Status, r.Body, time.Since(start))
	}
}

// TestSlowloris: clients that trickle their headers neither block others
// nor hold their connections past the header timeout.
func TestSlowloris(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the 10 s header timeout")
	}
	s := ducttest.Start(t)
	s.Deploy("normal", normal, `{"env": {"NORMAL_SECRET": "x"}}`)
	const slow = 200
	conns := make([]net.Conn, 0, slow)
	for range slow {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /fn/normal HTTP/1.1\r\nHost: x\r\nX-Slow: "))
		conns = append(conns, c)
	}
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		for _, c := range conns[:20] {
			c.Write([]byte("a")) // a byte now and then keeps no timer from firing but the header one
		}
		t0 := time.Now()
		if r := s.Invoke("normal", "GET", "/", ""); r.Status != 200 || time.Since(t0) > 250*time.Millisecond {
			t.Fatalf("with %d slow clients, a normal request took %s: %d", slow, time.Since(t0), r.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Past the header timeout every slow connection is closed.
	closed := 0
	deadline := time.Now().Add(12 * time.Second)
	for _, c := range conns {
		c.SetReadDeadline(deadline)
		buf := make([]byte, 256)
		for {
			_, err := c.Read(buf)
			if err != nil {
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					closed++
				}
				break
			}
		}
	}
	if closed != slow {
		t.Fatalf("%d of %d slow connections were closed by the server", closed, slow)
	}
}
