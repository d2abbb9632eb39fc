package daemon_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/ducttest"
)

var hello = ducttest.Files{"index.js": `exports.handler = async (req, res) => { console.log("line from " + req.path); console.error("err line"); res.send("hello " + process.env.GREETING); };`}

// TestRestartKeepsFunctions: stop the server and start it again on the same
// data dir; every function answers, with no re-upload.
func TestRestartKeepsFunctions(t *testing.T) {
	dir := t.TempDir()
	cfg := func(c *daemon.Config) { c.DataDir = dir }
	s := ducttest.Start(t, cfg)
	s.Deploy("hello", hello, `{"env": {"GREETING": "world"}}`)
	s.Deploy("py", ducttest.Files{"main.py": "def handler(request):\n    return 'py ok'\n"}, "")
	s.Deploy("gofn", ducttest.Files{"fn.go": "package function\nimport \"net/http\"\nfunc Handle(w http.ResponseWriter, r *http.Request) { w.Write([]byte(\"go ok\")) }\n"}, "")
	if r := s.Invoke("hello", "GET", "/", ""); r.Body != "hello world" {
		t.Fatalf("before restart: %d %q", r.Status, r.Body)
	}
	s.Stop()

	s2 := ducttest.Start(t, cfg)
	for fn, want := range map[string]string{"hello": "hello world", "py": "py ok", "gofn": "go ok"} {
		if r := s2.Invoke(fn, "GET", "/", ""); r.Status != 200 || r.Body != want {
			t.Errorf("%s after restart: %d %q", fn, r.Status, r.Body)
		}
	}
	r := s2.Get("/api/v1/functions/hello/versions")
	var vs []duct.Version
	json.Unmarshal([]byte(r.Body), &vs)
	if len(vs) != 1 {
		t.Fatalf("versions after restart: %s", r.Body)
	}
}

// TestExternalNATS runs two Duct nodes on one external NATS server: a
// function deployed on one is served by the other.
func TestExternalNATS(t *testing.T) {
	ext, err := broker.Open(t.Context(), broker.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	a := ducttest.Start(t, func(c *daemon.Config) { c.NATS = ext.ClientURL() })
	b := ducttest.Start(t, func(c *daemon.Config) { c.NATS = ext.ClientURL() })
	a.Deploy("shared", hello, `{"env": {"GREETING": "cluster"}}`)
	ducttest.Eventually(t, 10*time.Second, "node b serves the function", func() bool {
		return b.Invoke("shared", "GET", "/", "").Body == "hello cluster"
	})
	// A removal on b reaches a.
	if r := b.Do("DELETE", "/api/v1/functions/shared", nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	ducttest.Eventually(t, 10*time.Second, "node a stops serving", func() bool {
		return a.Invoke("shared", "GET", "/", "").Status == 404
	})
}

// TestLogsAndReports: output lines carry the invocation id, and each
// invocation has a report; both are readable through the API.
func TestLogsAndReports(t *testing.T) {
	s := ducttest.Start(t)
	s.Deploy("hello", hello, "")
	r1 := s.Invoke("hello", "GET", "/first", "")
	r2 := s.Invoke("hello", "GET", "/second", "")
	id1, id2 := r1.Header.Get("X-Request-Id"), r2.Header.Get("X-Request-Id")
	var entries []duct.LogEntry
	ducttest.Eventually(t, 5*time.Second, "two reports in the log", func() bool {
		r := s.Get("/api/v1/functions/hello/logs?since=1m")
		entries = nil
		for _, line := range strings.Split(strings.TrimSpace(r.Body), "\n") {
			var e duct.LogEntry
			if json.Unmarshal([]byte(line), &e) == nil {
				entries = append(entries, e)
			}
		}
		n := 0
		for _, e := range entries {
			if e.Stream == duct.LogReport {
				n++
			}
		}
		return n == 2
	})
	seen := map[string]string{}
	for _, e := range entries {
		switch e.Stream {
		case duct.LogStdout:
			seen[e.Message] = e.Invocation
		case duct.LogReport:
			rep := e.Report
			if rep.Duration <= 0 || rep.BilledDuration < rep.Duration || rep.MemorySize != 256*duct.MiB || rep.Status != 200 {
				t.Errorf("report %+v", rep)
			}
			if rep.Invocation == id1 && rep.InitDuration == 0 {
				t.Errorf("first invocation's report has no init duration: %+v", rep)
			}
			if rep.Invocation == id2 && rep.InitDuration != 0 {
				t.Errorf("warm invocation reports an init duration: %+v", rep)
			}
			if rep.MaxMemoryUsed <= 0 {
				t.Errorf("report without max memory used: %+v", rep)
			}
		}
	}
	if seen["line from /first"] != id1 || seen["line from /second"] != id2 {
		t.Fatalf("lines not tagged with their invocations: %v (ids %s %s)", seen, id1, id2)
	}
	r := s.Get("/api/v1/functions/hello/logs?since=1m&invocation=" + id2)
	if strings.Contains(r.Body, "/first") || !strings.Contains(r.Body, "/second") {
		t.Fatalf("invocation filter: %s", r.Body)
	}
	m := s.Get("/metrics").Body
	for _, want := range []string{
		`duct_invocations_total{function="hello",outcome="success"} 2`,
		`duct_cold_starts_total{function="hello"} 1`,
		`duct_instances{function="hello"} 1`,
		`duct_invocation_duration_seconds_count{function="hello"} 2`,
		`duct_init_duration_seconds_count{function="hello"} 1`,
		`duct_queue_wait_seconds`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestStartFailsCleanly(t *testing.T) {
	// Port already taken: Start fails and leaves nothing running.
	s := ducttest.Start(t)
	d, err := daemon.New(daemon.Config{Addr: s.Addr(), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("start on a taken port: %v", err)
	}
	if _, err := daemon.New(daemon.Config{Addr: "nonsense"}); err == nil {
		t.Fatal("bad addr accepted")
	}
	if _, err := daemon.New(daemon.Config{NATS: "nats://x:4222", NATSListen: "127.0.0.1:4222"}); err == nil {
		t.Fatal("nats-listen with external nats accepted")
	}
}

// TestGracefulShutdown: a request in flight when the server is told to
// stop finishes with its answer, and no instance process outlives the
// server.
func TestGracefulShutdown(t *testing.T) {
	s := ducttest.Start(t)
	s.Deploy("slow", ducttest.Files{"index.js": `exports.handler = async (req, res) => { await new Promise(r => setTimeout(r, 800)); res.send("finished"); };`}, "")
	if r := s.Invoke("slow", "GET", "/", ""); r.Body != "finished" {
		t.Fatalf("warm-up: %d %q", r.Status, r.Body)
	}
	pids := []int{}
	for _, in := range s.Daemon.Instances("slow") {
		pids = append(pids, in.PID)
	}
	done := make(chan ducttest.Response)
	go func() { done <- s.Invoke("slow", "GET", "/", "") }()
	time.Sleep(200 * time.Millisecond)
	s.Stop()
	r := <-done
	if r.Status != 200 || r.Body != "finished" {
		t.Fatalf("in-flight request during shutdown: %d %q", r.Status, r.Body)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("instance process %d still alive after shutdown", pid)
		}
	}
}

// TestMinInstances: minimum instances start without a request and stay
// past the idle timeout.
func TestMinInstances(t *testing.T) {
	s := ducttest.Start(t)
	s.Deploy("warm", hello, `{"minInstances": 2, "idleTimeout": "1s"}`)
	ducttest.Eventually(t, 10*time.Second, "two warm instances", func() bool { return s.Instances("warm") == 2 })
	time.Sleep(1500 * time.Millisecond)
	if n := s.Instances("warm"); n != 2 {
		t.Fatalf("%d instances after the idle timeout, want the minimum 2", n)
	}
	r := s.Invoke("warm", "GET", "/", "")
	if r.Status != 200 {
		t.Fatal(r.Status)
	}
	var rep duct.LogEntry
	ducttest.Eventually(t, 5*time.Second, "the report", func() bool {
		for _, line := range strings.Split(s.Get("/api/v1/functions/warm/logs?since=1m").Body, "\n") {
			if json.Unmarshal([]byte(line), &rep) == nil && rep.Stream == duct.LogReport {
				return true
			}
		}
		return false
	})
	if rep.Report.QueueWait != 0 || rep.Report.InitDuration != 0 {
		t.Errorf("a request to a warm minimum instance reports a wait of %s and an init of %s",
			rep.Report.QueueWait, rep.Report.InitDuration)
	}
}

// TestShutdownEndsFollowedLogs: a client following a log does not hold a
// graceful shutdown open.
func TestShutdownEndsFollowedLogs(t *testing.T) {
	s := ducttest.Start(t)
	s.Deploy("hello", hello, "")
	resp, err := s.HTTP.Get(s.URL + "/api/v1/functions/hello/logs?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	s.Stop()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("shutdown took %s with a followed log open", took)
	}
}

// TestCPUQuota: with a CPU quota configured, sandboxed instances get it.
func TestCPUQuota(t *testing.T) {
	s := ducttest.Start(t, func(c *daemon.Config) { c.InstanceCPUs = 0.5 })
	if !s.Sandboxed() {
		t.Skip("this host cannot sandbox")
	}
	s.Deploy("quota", hello, "")
	if r := s.Invoke("quota", "GET", "/", ""); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	ins := s.Daemon.Instances("quota")
	if len(ins) == 0 || ins[0].PID == 0 {
		t.Fatal("no instance")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", ins[0].PID))
	if err != nil {
		t.Fatal(err)
	}
	var quota string
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[1] == "" && parts[2] != "/": // v2
			q, _ := os.ReadFile("/sys/fs/cgroup" + parts[2] + "/cpu.max")
			quota = strings.Fields(string(q) + " ")[0]
		case strings.Contains(","+parts[1]+",", ",cpu,"):
			q, _ := os.ReadFile("/sys/fs/cgroup/cpu" + parts[2] + "/cpu.cfs_quota_us")
			quota = strings.TrimSpace(string(q))
		}
	}
	if quota != "50000" {
		t.Fatalf("CPU quota %q, want 50000 (half a CPU)", quota)
	}
}
