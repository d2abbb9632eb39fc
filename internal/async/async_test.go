package async_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/async"
	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/ducttest"
)

// worker is a Node.js function whose path says how to behave.
var worker = ducttest.Files{"index.js": `
const seen = {};
exports.handler = async (req, res) => {
  const q = req.query;
  const n = seen[q.key || req.path] = (seen[q.key || req.path] || 0) + 1;
  console.log("attempt " + n + " of " + req.path);
  if (req.path === "/fail") return res.status(Number(q.status || 500)).send("failing, try " + n);
  if (req.path === "/flaky") {
    if (n <= Number(q.times)) return res.status(500).send("flake " + n);
    return res.send("ok after " + n);
  }
  if (req.path === "/sleep") { await new Promise(r => setTimeout(r, Number(q.ms))); return res.send("slept"); }
  if (req.path === "/bin") return res.set("Content-Type", "application/octet-stream").send(Buffer.from([0, 1, 2, 255]));
  res.json({method: req.method, path: req.path, query: q, body: req.body, hops: req.get("x-duct-hops") || null,
    auth: req.get("authorization") || null, invocation: req.get("x-duct-invocation-id") || null,
    prefer: req.get("prefer") || null, key: req.get("idempotency-key") || null});
};`}

// fast shortens every delay of asynchronous invocations.
func fast(c *daemon.Config) {
	c.Async = async.Tuning{
		RetryDelay: 50 * time.Millisecond, ThrottleDelay: 20 * time.Millisecond, MaxThrottleDelay: 200 * time.Millisecond,
		MinEventAge: 100 * time.Millisecond, AckWait: time.Second, StopGrace: time.Second,
	}
}

// submit queues an invocation and checks the 202.
func submit(t *testing.T, s *ducttest.Server, name, method, path, body string, header ...string) string {
	t.Helper()
	r := s.Invoke(name, method, path, body, append([]string{"Prefer", "respond-async"}, header...)...)
	if r.Status != http.StatusAccepted {
		t.Fatalf("submit %s %s: status %d: %s", method, path, r.Status, r.Body)
	}
	loc := r.Header.Get("Location")
	var a struct{ ID, Location string }
	if err := json.Unmarshal([]byte(r.Body), &a); err != nil || a.ID == "" || loc != "/api/v1/invocations/"+a.ID || a.Location != loc {
		t.Fatalf("202 with Location %q and body %q (%v)", loc, r.Body, err)
	}
	if got := r.Header.Get("Preference-Applied"); got != "respond-async" {
		t.Errorf("Preference-Applied = %q", got)
	}
	return a.ID
}

// record reads an invocation's record through the API.
func record(t *testing.T, s *ducttest.Server, id string) duct.Invocation {
	t.Helper()
	r := s.Get("/api/v1/invocations/" + id)
	if r.Status != http.StatusOK {
		t.Fatalf("GET invocation %s: %d %s", id, r.Status, r.Body)
	}
	var inv duct.Invocation
	if err := json.Unmarshal([]byte(r.Body), &inv); err != nil {
		t.Fatalf("record %s: %v", r.Body, err)
	}
	return inv
}

// await polls an invocation until it is final.
func await(t *testing.T, s *ducttest.Server, id string) duct.Invocation {
	t.Helper()
	var inv duct.Invocation
	ducttest.Eventually(t, 20*time.Second, "invocation "+id+" to finish", func() bool {
		inv = record(t, s, id)
		return inv.Status.Final()
	})
	return inv
}

func TestSubmitAndRun(t *testing.T) {
	s := ducttest.Start(t, fast)
	s.Deploy("worker", worker, "")
	id := submit(t, s, "worker", "POST", "/a/b?x=1", `{"k":[1,2]}`,
		"Content-Type", "application/json", "Authorization", "Bearer not-for-the-function", "X-Duct-Hops", "3")

	// The 202 came after the record was stored: it is there at once.
	inv := record(t, s, id)
	if inv.ID != id || inv.Function != "worker" || inv.Request.Method != "POST" || inv.Request.Path != "/a/b" || inv.Request.Query != "x=1" {
		t.Errorf("record right after the 202: %+v", inv)
	}
	switch inv.Status {
	case duct.InvocationQueued, duct.InvocationRunning, duct.InvocationSucceeded:
	default:
		t.Errorf("status right after the 202: %s", inv.Status)
	}

	inv = await(t, s, id)
	if inv.Status != duct.InvocationSucceeded || inv.Attempts != 1 || inv.MaxAttempts != 3 || inv.Result == nil || inv.Result.Status != 200 || inv.Error != "" {
		t.Fatalf("final record: %+v", inv)
	}
	if inv.StartedAt.Before(inv.SubmittedAt) || inv.FinishedAt.Before(inv.StartedAt) || len(inv.History) != 1 || inv.Version != 1 || inv.Hops != 4 {
		t.Errorf("times, history, version or hops: %+v", inv)
	}
	var seen struct {
		Method, Path, Hops, Invocation string
		Query                          map[string]string
		Body                           map[string]any
		Auth, Prefer                   *string
	}
	if err := json.Unmarshal([]byte(inv.Result.Body), &seen); err != nil {
		t.Fatalf("result body %q: %v", inv.Result.Body, err)
	}
	if seen.Method != "POST" || seen.Path != "/a/b" || seen.Query["x"] != "1" || seen.Hops != "4" || seen.Invocation != id {
		t.Errorf("the function saw %+v", seen)
	}
	if seen.Auth != nil || seen.Prefer != nil {
		t.Errorf("the function saw Authorization %v, Prefer %v: neither is stored", seen.Auth, seen.Prefer)
	}
	if len(seen.Body["k"].([]any)) != 2 {
		t.Errorf("body seen as %v", seen.Body)
	}

	// Each attempt writes a report under the invocation's id, as a
	// synchronous invocation does.
	ducttest.Eventually(t, 5*time.Second, "the attempt's report", func() bool {
		r := s.Get("/api/v1/functions/worker/logs?invocation=" + id)
		return strings.Contains(r.Body, `"stream":"report"`) && strings.Contains(r.Body, `"status":200`)
	})
}

func TestBinaryResult(t *testing.T) {
	s := ducttest.Start(t, fast)
	s.Deploy("worker", worker, "")
	inv := await(t, s, submit(t, s, "worker", "GET", "/bin", ""))
	if r := inv.Result; r == nil || r.BodyEncoding != "base64" || r.Body != "AAEC/w==" || r.BodySize != 4 {
		t.Errorf("binary result: %+v", r)
	}
}

func TestStatusTransitions(t *testing.T) {
	s := ducttest.Start(t, fast)
	s.Deploy("worker", worker, "")
	id := submit(t, s, "worker", "GET", "/sleep?ms=700", "")
	seen := map[duct.InvocationStatus]bool{}
	var inv duct.Invocation
	ducttest.Eventually(t, 20*time.Second, "the invocation to finish", func() bool {
		inv = record(t, s, id)
		seen[inv.Status] = true
		return inv.Status.Final()
	})
	if !seen[duct.InvocationRunning] || inv.Status != duct.InvocationSucceeded || inv.Result.Body != "slept" {
		t.Errorf("statuses seen %v, final %+v", seen, inv)
	}
}

func TestRetries(t *testing.T) {
	s := ducttest.Start(t, fast)
	// One instance: the function counts attempts in its memory.
	s.Deploy("worker", worker, "maxInstances: 1\nretry: {attempts: 2}")
	for _, tc := range []struct {
		path     string
		status   duct.InvocationStatus
		attempts int
		last     int
	}{
		{"/flaky?times=2&key=a", duct.InvocationSucceeded, 3, 200}, // fails twice, then succeeds
		{"/flaky?times=3&key=b", duct.InvocationFailed, 3, 500},    // would need a fourth
		{"/fail?status=503", duct.InvocationFailed, 3, 503},        // the function's own 503 counts
		{"/fail?status=429&key=c", duct.InvocationFailed, 3, 429},  // 429 from the function: retried
		{"/fail?status=404", duct.InvocationFailed, 1, 404},        // a 4xx is final
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			inv := await(t, s, submit(t, s, "worker", "GET", tc.path, ""))
			if inv.Status != tc.status || inv.Attempts != tc.attempts || inv.Result == nil || inv.Result.Status != tc.last || len(inv.History) != tc.attempts {
				t.Fatalf("got %s after %d attempts (last %+v); want %s after %d, last %d\n%+v", inv.Status, inv.Attempts, inv.Result, tc.status, tc.attempts, tc.last, inv)
			}
			if tc.status == duct.InvocationFailed && !strings.Contains(inv.Error, "answered") {
				t.Errorf("error %q", inv.Error)
			}
		})
	}
}

func TestNoRetries(t *testing.T) {
	s := ducttest.Start(t, fast)
	s.Deploy("worker", worker, "retry: {attempts: 0}")
	inv := await(t, s, submit(t, s, "worker", "GET", "/fail", ""))
	if inv.Status != duct.InvocationFailed || inv.Attempts != 1 || inv.MaxAttempts != 1 {
		t.Errorf("%+v", inv)
	}
}

func TestMaxEventAge(t *testing.T) {
	s := ducttest.Start(t, fast, func(c *daemon.Config) { c.Async.RetryDelay = 300 * time.Millisecond })
	s.Deploy("worker", worker, "retry: {attempts: 5, maxEventAge: 1s}")
	// Retries wait 300ms, 600ms, then 1.2s: the third would start after
	// the second second, so that at most three attempts of six run (two
	// on a slow machine).
	inv := await(t, s, submit(t, s, "worker", "GET", "/fail", ""))
	if inv.Status != duct.InvocationFailed || inv.Attempts < 2 || inv.Attempts > 3 || !strings.Contains(inv.Error, "maximum event age of 1s") {
		t.Errorf("%+v", inv)
	}
}

// TestThrottledNotCounted: an attempt that finds no instance free (the
// pool answers 429) waits and is tried again, without counting.
func TestThrottledNotCounted(t *testing.T) {
	s := ducttest.Start(t, fast, func(c *daemon.Config) { c.QueueTimeout = 200 * time.Millisecond })
	s.Deploy("worker", worker, "maxInstances: 1\nretry: {attempts: 0}")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if r := s.Invoke("worker", "GET", "/sleep?ms=3000", ""); r.Status != 200 {
			t.Errorf("the synchronous request: %d %s", r.Status, r.Body)
		}
	}()
	ducttest.Eventually(t, 10*time.Second, "the instance to be busy", func() bool {
		for _, in := range s.Daemon.Instances("worker") {
			if in.State == "busy" {
				return true
			}
		}
		return false
	})
	inv := await(t, s, submit(t, s, "worker", "GET", "/", ""))
	wg.Wait()
	if inv.Status != duct.InvocationSucceeded || inv.Attempts != 1 || inv.Throttled == 0 {
		t.Errorf("%+v", inv)
	}
}

func TestIdempotencyKey(t *testing.T) {
	s := ducttest.Start(t, fast)
	s.Deploy("worker", worker, "")
	s.Deploy("other", worker, "")
	a := submit(t, s, "worker", "POST", "/", `{"n":1}`, "Idempotency-Key", "order-42")
	b := submit(t, s, "worker", "POST", "/", `{"n":2}`, "Idempotency-Key", "order-42")
	c := submit(t, s, "other", "POST", "/", `{"n":1}`, "Idempotency-Key", "order-42")
	d := submit(t, s, "worker", "POST", "/", `{"n":1}`, "Idempotency-Key", "order-43")
	if a != b || a == c || a == d || c == d {
		t.Fatalf("ids %s %s %s %s: want the first two equal, the others apart", a, b, c, d)
	}
	inv := await(t, s, a)
	if inv.IdempotencyKey != "order-42" || inv.Attempts != 1 || !strings.Contains(inv.Result.Body, `{\"n\":1}`) || !strings.Contains(inv.Result.Body, `"key":"order-42"`) {
		t.Errorf("%+v\n%s", inv, inv.Result.Body)
	}
	// Concurrent submissions with one key agree too.
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = submit(t, s, "worker", "POST", "/", "{}", "Idempotency-Key", "race")
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent submissions got ids %v", ids)
		}
	}
}

func TestRefusals(t *testing.T) {
	s := ducttest.Start(t, fast)
	s.Deploy("worker", worker, "")
	s.Deploy("private", worker, "invoke: token")
	async := []string{"Prefer", "respond-async"}
	for _, tc := range []struct {
		name, fn, body string
		header         []string
		status         int
	}{
		{"unknown function", "nope", "", nil, 404},
		{"body over 1 MiB", "worker", strings.Repeat("x", 1<<20+1), nil, 413},
		{"bad idempotency key", "worker", "", []string{"Idempotency-Key", "caf\u00e9"}, 400},
		{"token function without a token", "private", "", nil, 401},
		{"token function with a read token", "private", "", []string{"Authorization", "Bearer " + readToken(t, s)}, 403},
		{"hops past the limit", "worker", "", []string{"X-Duct-Hops", "16"}, 508},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.DoToken("", "POST", "/fn/"+tc.fn, strings.NewReader(tc.body), append(async, tc.header...)...)
			if r.Status != tc.status || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") || r.Header.Get("Location") != "" {
				t.Errorf("status %d, Content-Type %q, Location %q: %s", r.Status, r.Header.Get("Content-Type"), r.Header.Get("Location"), r.Body)
			}
		})
	}
	// Exactly 1 MiB is fine, and a token-mode function takes a token.
	r := s.DoToken(ducttest.AdminToken, "POST", "/fn/private", strings.NewReader(strings.Repeat("x", 1<<20)), async...)
	if r.Status != http.StatusAccepted {
		t.Fatalf("1 MiB to a token function, with a token: %d %s", r.Status, r.Body)
	}
	var a struct{ ID string }
	json.Unmarshal([]byte(r.Body), &a)
	if inv := await(t, s, a.ID); inv.Status != duct.InvocationSucceeded || strings.Contains(inv.Result.Body, ducttest.AdminToken) {
		t.Errorf("%+v", inv)
	}
	// Records need a token that may read.
	if r := s.DoToken("", "GET", "/api/v1/invocations/"+a.ID, nil); r.Status != 401 {
		t.Errorf("record without a token: %d", r.Status)
	}
	for path, want := range map[string]int{"/api/v1/invocations/0123456789abcdef": 404, "/api/v1/invocations/NOT-AN-ID": 400} {
		if r := s.Get(path); r.Status != want {
			t.Errorf("GET %s: %d, want %d: %s", path, r.Status, want, r.Body)
		}
	}
}

// readToken creates a token of role read.
func readToken(t *testing.T, s *ducttest.Server) string {
	t.Helper()
	r := s.Do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"reader","role":"read"}`), "Content-Type", "application/json")
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(r.Body), &tok); err != nil || tok.Token == "" {
		t.Fatalf("create token: %d %s", r.Status, r.Body)
	}
	return tok.Token
}

// BenchmarkSubmit measures accepting asynchronous invocations: each 202
// waits for two fsynced writes (the queued message and its record). The
// function (one instance) also runs them meanwhile, writing records.
func BenchmarkSubmit(b *testing.B) {
	s := ducttest.Start(b)
	s.Deploy("worker", worker, "maxInstances: 1")
	hc := &http.Client{}
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", s.URL+"/fn/worker", strings.NewReader(`{"n":1}`))
			req.Header.Set("Prefer", "respond-async")
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// TestBacklogDoesNotBlockOthers: a function with a backlog runs as many
// attempts as it has instances; another function's invocation queued
// behind that backlog runs at once.
func TestBacklogDoesNotBlockOthers(t *testing.T) {
	s := ducttest.Start(t, fast)
	s.Deploy("slow", worker, "maxInstances: 1")
	s.Deploy("quick", worker, "")
	var backlog []string
	for range 8 {
		backlog = append(backlog, submit(t, s, "slow", "GET", "/sleep?ms=300", ""))
	}
	quick := await(t, s, submit(t, s, "quick", "GET", "/", ""))
	var last duct.Invocation
	for _, id := range backlog {
		if last = await(t, s, id); last.Status != duct.InvocationSucceeded || last.Attempts != 1 || last.Throttled != 0 {
			t.Errorf("backlog: %+v", last)
		}
	}
	if quick.Status != duct.InvocationSucceeded || !quick.FinishedAt.Before(last.StartedAt) {
		t.Errorf("queued behind a backlog of another function, finished at %s; the backlog's last began at %s", quick.FinishedAt, last.StartedAt)
	}
}
