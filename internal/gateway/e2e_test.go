package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/ducttest"
)

var (
	nodeEcho = ducttest.Files{"index.js": `
exports.handler = async (req, res) => {
  console.log("invoked " + req.path);
  if (req.path === "/status") return res.status(418).set("X-Teapot", "yes").send("short and stout");
  if (req.path === "/sleep") { await new Promise(r => setTimeout(r, Number(req.query.ms))); return res.send("slept"); }
  if (req.path === "/exit") process.exit(3);
  if (req.path === "/big") return res.send("x".repeat(Number(req.query.n)));
  res.json({method: req.method, path: req.path, query: req.query, body: req.body, hdr: req.get("x-test") || null});
};`}
	pyEcho = ducttest.Files{"main.py": `
import json, time, os
def handler(request):
    print("invoked " + request.path)
    if request.path == "/status":
        return "short and stout", 418, {"X-Teapot": "yes"}
    if request.path == "/sleep":
        time.sleep(int(request.args["ms"]) / 1000)
        return "slept"
    if request.path == "/exit":
        os._exit(3)
    return {"method": request.method, "path": request.path, "query": request.args, "body": request.json, "hdr": request.headers.get("x-test")}
`}
	goEcho = ducttest.Files{"fn.go": `package function

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
	"fmt"
)

func Handle(w http.ResponseWriter, r *http.Request) {
	fmt.Println("invoked " + r.URL.Path)
	switch r.URL.Path {
	case "/status":
		w.Header().Set("X-Teapot", "yes")
		w.WriteHeader(418)
		io.WriteString(w, "short and stout")
		return
	case "/sleep":
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		io.WriteString(w, "slept")
		return
	case "/exit":
		os.Exit(3)
	}
	var body any
	json.NewDecoder(r.Body).Decode(&body)
	q := map[string]string{}
	for k := range r.URL.Query() {
		q[k] = r.URL.Query().Get(k)
	}
	var hdr any
	if h := r.Header.Get("X-Test"); h != "" {
		hdr = h
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.Path, "query": q, "body": body, "hdr": hdr})
}
`}
)

var echoes = []struct {
	name  string
	files ducttest.Files
}{{"node", nodeEcho}, {"python", pyEcho}, {"go", goEcho}}

// TestHTTPSemantics checks that method, path, query, headers and bodies
// pass through in each language, and that statuses and headers come back.
func TestHTTPSemantics(t *testing.T) {
	s := ducttest.Start(t)
	for _, e := range echoes {
		t.Run(e.name, func(t *testing.T) {
			fn := "echo-" + e.name
			s.Deploy(fn, e.files, "")
			r := s.Invoke(fn, "POST", "/a/b?x=1&y=two", `{"k":[1,2]}`, "Content-Type", "application/json", "X-Test", "t1")
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			var got struct {
				Method, Path string
				Query        map[string]string
				Body         map[string]any
				Hdr          string
			}
			if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
				t.Fatalf("%v: %s", err, r.Body)
			}
			if got.Method != "POST" || got.Path != "/a/b" || got.Query["x"] != "1" || got.Query["y"] != "two" || got.Hdr != "t1" {
				t.Errorf("request seen as %+v", got)
			}
			if fmt.Sprint(got.Body["k"]) != "[1 2]" {
				t.Errorf("body seen as %v", got.Body)
			}
			if r.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on the response")
			}
			r = s.Invoke(fn, "GET", "/status", "")
			if r.Status != 418 || r.Header.Get("X-Teapot") != "yes" || r.Body != "short and stout" {
				t.Errorf("status route: %d %v %q", r.Status, r.Header, r.Body)
			}
			r = s.Invoke(fn, "DELETE", "", "")
			if r.Status != 200 || !strings.Contains(r.Body, `"DELETE"`) || !strings.Contains(r.Body, `"path":"/"`) {
				t.Errorf("root path: %d %s", r.Status, r.Body)
			}
		})
	}
}

func problem(t *testing.T, r ducttest.Response) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want problem+json; body %s", ct, r.Body)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
		t.Fatal(err)
	}
	if p["requestId"] == "" || p["requestId"] != r.Header.Get("X-Request-Id") {
		t.Errorf("problem request id %v, header %q", p["requestId"], r.Header.Get("X-Request-Id"))
	}
	if int(p["status"].(float64)) != r.Status {
		t.Errorf("problem status %v, response status %d", p["status"], r.Status)
	}
	return p
}

func TestPlatformErrors(t *testing.T) {
	s := ducttest.Start(t, func(c *daemon.Config) { c.MaxRequestBody = 1 << 20 })
	s.Deploy("echo", nodeEcho, "")
	r := s.Invoke("nope", "GET", "/", "")
	if r.Status != 404 {
		t.Fatalf("unknown function: %d", r.Status)
	}
	problem(t, r)
	r = s.Get("/fn/")
	if r.Status != 404 {
		t.Fatalf("no name: %d", r.Status)
	}
	// Over the limit with a Content-Length: refused before the function.
	r = s.Invoke("echo", "POST", "/", strings.Repeat("x", 1<<20+1))
	if r.Status != 413 {
		t.Fatalf("large body: %d %s", r.Status, r.Body)
	}
	problem(t, r)
	// Over the limit, chunked: cut off while streaming.
	r = s.Do("POST", "/fn/echo/", io.MultiReader(strings.NewReader(strings.Repeat("y", 1<<20)), strings.NewReader("z")))
	if r.Status != 413 {
		t.Fatalf("large chunked body: %d %s", r.Status, r.Body)
	}
	// At the limit: accepted.
	r = s.Invoke("echo", "POST", "/", strings.Repeat("x", 1<<20), "Content-Type", "text/plain")
	if r.Status != 200 {
		t.Fatalf("body at the limit: %d %s", r.Status, r.Body[:min(len(r.Body), 200)])
	}
	// A response over the limit with a length is refused.
	r = s.Invoke("echo", "GET", fmt.Sprintf("/big?n=%d", 7<<20), "")
	if r.Status != 502 {
		t.Fatalf("large response: %d", r.Status)
	}
	problem(t, r)
}

// TestTimeout: a function past its timeout gets 504 within timeout + 1s, its
// instance is replaced, and the next request succeeds.
func TestTimeout(t *testing.T) {
	s := ducttest.Start(t)
	for _, e := range echoes {
		t.Run(e.name, func(t *testing.T) {
			fn := "slow-" + e.name
			s.Deploy(fn, e.files, `{"timeout": "1s"}`)
			if r := s.Invoke(fn, "GET", "/sleep?ms=1", ""); r.Status != 200 {
				t.Fatalf("warm-up: %d %s", r.Status, r.Body)
			}
			start := time.Now()
			r := s.Invoke(fn, "GET", "/sleep?ms=5000", "")
			took := time.Since(start)
			if r.Status != 504 {
				t.Fatalf("status %d, want 504: %s", r.Status, r.Body)
			}
			problem(t, r)
			if took > 2*time.Second {
				t.Fatalf("504 after %s, want within timeout + 1s", took)
			}
			if r := s.Invoke(fn, "GET", "/sleep?ms=1", ""); r.Status != 200 {
				t.Fatalf("after timeout: %d %s", r.Status, r.Body)
			}
		})
	}
}

// TestCrash: an instance that exits mid-request gives 502; the next
// request gets a fresh instance.
func TestCrash(t *testing.T) {
	s := ducttest.Start(t)
	for _, e := range echoes {
		t.Run(e.name, func(t *testing.T) {
			fn := "crash-" + e.name
			s.Deploy(fn, e.files, "")
			r := s.Invoke(fn, "GET", "/exit", "")
			if r.Status != 502 {
				t.Fatalf("status %d, want 502: %s", r.Status, r.Body)
			}
			if p := problem(t, r); !strings.Contains(fmt.Sprint(p["detail"]), "status 3") {
				t.Errorf("detail %q does not say how the instance ended", p["detail"])
			}
			if r := s.Invoke(fn, "GET", "/", ""); r.Status != 200 {
				t.Fatalf("after crash: %d %s", r.Status, r.Body)
			}
		})
	}
}

// TestScaleOutAndToZero: 50 concurrent requests on a function with
// concurrency 1 and max 10 instances use 10 instances and all succeed;
// after the idle timeout no instance is left.
func TestScaleOutAndToZero(t *testing.T) {
	s := ducttest.Start(t)
	s.Deploy("burst", nodeEcho, `{"concurrency": 1, "maxInstances": 10, "idleTimeout": "1s"}`)
	var wg sync.WaitGroup
	var failed atomic.Int32
	var peak atomic.Int32
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if n := int32(s.Instances("burst")); n > peak.Load() {
					peak.Store(n)
				}
			}
		}
	}()
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(s.URL + "/fn/burst/sleep?ms=300")
			if err != nil {
				failed.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if failed.Load() != 0 {
		t.Fatalf("%d of 50 requests failed", failed.Load())
	}
	if peak.Load() != 10 {
		t.Fatalf("peak instances %d, want 10", peak.Load())
	}
	ducttest.Eventually(t, 5*time.Second, "scale to zero", func() bool { return s.Instances("burst") == 0 })
}

// TestQueueFull: with every slot busy and the wait queue bounded, extra
// requests get 429 with Retry-After.
func TestQueueFull(t *testing.T) {
	s := ducttest.Start(t, func(c *daemon.Config) { c.QueueDepth = 1; c.QueueTimeout = 500 * time.Millisecond })
	s.Deploy("narrow", nodeEcho, `{"maxInstances": 1}`)
	if r := s.Invoke("narrow", "GET", "/", ""); r.Status != 200 {
		t.Fatal(r.Status)
	}
	var wg sync.WaitGroup
	statuses := make(chan ducttest.Response, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- s.Invoke("narrow", "GET", "/sleep?ms=1500", "")
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for r := range statuses {
		counts[r.Status]++
		if r.Status == 429 && r.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if counts[200] != 1 || counts[429] != 3 {
		t.Fatalf("statuses %v, want one 200 and three 429", counts)
	}
}

// TestRedeployUnderLoad: switching versions while requests flow fails none.
func TestRedeployUnderLoad(t *testing.T) {
	s := ducttest.Start(t)
	v1 := ducttest.Files{"index.js": `exports.handler = async (req, res) => { await new Promise(r => setTimeout(r, 20)); res.send("v1"); };`}
	v2 := ducttest.Files{"index.js": `exports.handler = async (req, res) => { await new Promise(r => setTimeout(r, 20)); res.send("v2"); };`}
	s.Deploy("live", v1, `{"concurrency": 4}`)
	var failed, ok1, ok2 atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(s.URL + "/fn/live")
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode != 200:
					failed.Add(1)
					t.Logf("failed: %d %s", resp.StatusCode, b)
				case string(b) == "v1":
					ok1.Add(1)
				case string(b) == "v2":
					ok2.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	s.Deploy("live", v2, `{"concurrency": 4}`)
	time.Sleep(300 * time.Millisecond)
	s.Deploy("live", v1, `{"concurrency": 4}`)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok1.Load() == 0 || ok2.Load() == 0 {
		t.Fatalf("failed %d, v1 %d, v2 %d", failed.Load(), ok1.Load(), ok2.Load())
	}
	ducttest.Eventually(t, 5*time.Second, "old versions' instances gone", func() bool {
		for _, in := range s.Daemon.Instances("live") {
			if in.Version != 3 {
				return false
			}
		}
		return true
	})
}

// TestStreaming: bodies stream both ways: the function sees the first
// chunk before the client has finished sending, and the client sees the
// first chunk of the answer before the function has finished.
func TestStreaming(t *testing.T) {
	s := ducttest.Start(t)
	s.Deploy("stream", ducttest.Files{"main.go": `package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		sc := bufio.NewScanner(r.Body)
		fl := w.(http.Flusher)
		for sc.Scan() {
			fmt.Fprintf(w, "echo %s\n", sc.Text())
			fl.Flush()
		}
	})
	http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
}
`}, `{"concurrency": 10}`)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", s.URL+"/fn/stream/", pr)
	done := make(chan *http.Response)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		done <- resp
	}()
	fmt.Fprintln(pw, "one")
	var resp *http.Response
	select {
	case resp = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no response headers while the request body is still open")
	}
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	br := make([]byte, 64)
	n, _ := resp.Body.Read(br)
	if got := string(br[:n]); got != "echo one\n" {
		t.Fatalf("first chunk %q", got)
	}
	fmt.Fprintln(pw, "two")
	n, _ = resp.Body.Read(br)
	if got := string(br[:n]); got != "echo two\n" {
		t.Fatalf("second chunk %q", got)
	}
	pw.Close()
}

// TestHugeHeaders: a request whose headers exceed the server's limit is
// refused before any function runs.
func TestHugeHeaders(t *testing.T) {
	s := ducttest.Start(t)
	s.Deploy("echo", nodeEcho, "")
	r := s.Invoke("echo", "GET", "/", "", "X-Big", strings.Repeat("a", 128<<10))
	if r.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", r.Status)
	}
	if r := s.Invoke("echo", "GET", "/", "", "X-Fine", strings.Repeat("a", 16<<10)); r.Status != 200 {
		t.Fatalf("16 KiB header: %d", r.Status)
	}
}
