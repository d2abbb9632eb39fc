package bench

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct"
)

func TestLoadAgainstBare(t *testing.T) {
	srv := httptest.NewServer(BareHandler())
	defer srv.Close()
	r, err := Load(context.Background(), srv.URL+"/", 4, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests < 100 || r.Errors != 0 || r.P50 <= 0 || r.P99 < r.P50 {
		t.Fatalf("result %+v", r)
	}
}

func TestParseWrk(t *testing.T) {
	out := `Running 3s test @ http://127.0.0.1:9911/
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    47.45us   97.61us   4.27ms   99.03%
    Req/Sec    20.76k     1.32k   22.32k    86.67%
  Latency Distribution
     50%   41.00us
     75%   43.00us
     90%   49.00us
     99%  214.00us
  61928 requests in 3.00s, 7.33MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  20613.00
Transfer/sec:      2.44MB
`
	r, err := parseWrk(out, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Requests: 61928, Errors: 3, Duration: 3 * time.Second, RPS: 20613, P50: 41 * time.Microsecond, P99: 214 * time.Microsecond}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
}

// TestRunSmall runs the whole benchmark briefly in process, to keep it
// working; the figures it prints are not meaningful at this length.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and builds a function")
	}
	rep, err := Run(context.Background(), Config{
		Duration: 200 * time.Millisecond, Conns: []int{1, 4}, ColdSamples: 3, Generator: "builtin",
		Runtimes: []duct.Runtime{duct.RuntimeGo, duct.RuntimeNode, duct.RuntimePython},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warm) != 8 || len(rep.Cold) != 3 || rep.Ratio <= 0 {
		t.Fatalf("report %+v", rep)
	}
	t.Log(rep.String())
}

// TestRunEventsSmall runs the events benchmark briefly, to keep it
// working; its figures mean little at this size.
func TestRunEventsSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and builds a function")
	}
	rep, err := RunEvents(context.Background(), EventsConfig{Messages: 2000, Samples: 20})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RawPublish <= 0 || rep.GRPCPublish <= 0 || rep.NativeConsume <= 0 || rep.GRPCConsume <= 0 || rep.TriggerP50 <= 0 {
		t.Fatalf("report %+v", rep)
	}
	var b strings.Builder
	rep.Print(&b)
	t.Log(b.String())
}
