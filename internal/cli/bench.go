package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/bench"
)

// benchCmd is `duct bench`.
type benchCmd struct {
	duration  time.Duration
	cold      int
	generator string
	runtimes  string
	conns     string
	json      bool
	insecure  bool
	events    bool
	messages  int
}

func (c *benchCmd) info() cmdInfo {
	return cmdInfo{
		name:    "bench",
		group:   "Other",
		summary: "Measure warm throughput and cold starts against a bare Go server",
		help: `
Bench starts its own Duct on loopback (a temporary data directory) and
measures, in the same run:

  - warm requests/s and p50/p99 latency of a Go no-op function through the
    gateway, beside a bare Go net/http server answering the same body (and,
    for scale, Go's httputil.ReverseProxy in front of it), at each
    connection count (default 1 and 50); the figure that matters is the
    ratio to the bare server;
  - cold-start latency from zero instances for Go, Node.js and Python: each
    sample stops the function's instances first, then times one request.

The load generator is wrk when it is on PATH (the tool the brief's
baselines were measured with), else a built-in one; both the generator and
the bare server run as separate processes. Run it on an otherwise idle
machine: the numbers are only as quiet as the machine.`,
		examples: `
duct bench
duct bench --duration 10s --cold 50
duct bench --generator builtin --conns 1,10,50 --json
duct bench --events          # Pub/Sub throughput and topic-trigger latency`,
	}
}

func (c *benchCmd) define(fs *flagSet, e *env) {
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "length of each warm run")
	fs.IntVar(&c.cold, "cold", 30, "cold-start samples per runtime")
	fs.StringVar(&c.generator, "generator", "", "load generator: wrk or builtin (default: wrk if installed)")
	fs.StringVar(&c.runtimes, "runtimes", "go,node,python", "runtimes to cold-start, comma-separated")
	fs.StringVar(&c.conns, "conns", "1,50", "connection counts of the warm runs, comma-separated")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	fs.BoolVar(&c.events, "events", false, "measure Pub/Sub and topic triggers instead of function invocations")
	fs.IntVar(&c.messages, "messages", 30000, "messages per Pub/Sub throughput run (with --events)")
	fs.BoolVar(&c.insecure, "insecure-no-sandbox", false, "measure a server that runs functions unsandboxed")
}

func (c *benchCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 0, ""); err != nil {
		return err
	}
	if c.events {
		tuneGC(e.getenv)
		rep, err := bench.RunEvents(ctx, bench.EventsConfig{Messages: c.messages, InsecureNoSandbox: c.insecure,
			Progress: func(s string) { fmt.Fprintln(e.stderr, "bench:", s) }})
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if c.json {
			return writeJSON(e.stdout, rep)
		}
		rep.Print(e.stdout)
		return nil
	}
	cfg := bench.Config{Duration: c.duration, ColdSamples: c.cold, Generator: c.generator, InsecureNoSandbox: c.insecure}
	switch c.generator {
	case "", "wrk", "builtin":
	default:
		return usageErrorf("--generator %q: want wrk or builtin", c.generator)
	}
	for _, s := range strings.Split(c.conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 10000 {
			return usageErrorf("--conns %q: want counts such as 1,50", c.conns)
		}
		cfg.Conns = append(cfg.Conns, n)
	}
	for _, s := range strings.Split(c.runtimes, ",") {
		r := duct.Runtime(strings.TrimSpace(s))
		if r != duct.RuntimeGo && r != duct.RuntimeNode && r != duct.RuntimePython {
			return usageErrorf("--runtimes: %q is not go, node or python", r)
		}
		cfg.Runtimes = append(cfg.Runtimes, r)
	}
	if self, err := os.Executable(); err == nil {
		cfg.Spawn = func(args ...string) *exec.Cmd { return exec.Command(self, args...) }
	}
	cfg.Progress = func(s string) { fmt.Fprintln(e.stderr, "bench:", s) }
	tuneGC(e.getenv) // as duct server does
	cfg.Logger = slog.New(slog.DiscardHandler)
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if c.json {
		return writeJSON(e.stdout, rep)
	}
	rep.Print(e.stdout)
	return nil
}

// hidden runs the helper processes of duct bench: "bench-load URL CONNS
// DURATION" prints one load Result as JSON; "bench-bare ADDR" serves the
// baseline; "bench-proxy ADDR URL" runs the standard library's reverse
// proxy in front of it. They are not listed in help.
func (e *env) hidden(ctx context.Context, args []string) (int, bool) {
	switch {
	case len(args) == 4 && args[0] == "bench-load":
		conns, err1 := strconv.Atoi(args[2])
		d, err2 := time.ParseDuration(args[3])
		if err1 != nil || err2 != nil {
			fmt.Fprintln(e.stderr, "duct bench-load: usage: bench-load URL CONNS DURATION")
			return exitUsage, true
		}
		res, err := bench.Load(ctx, args[1], conns, d)
		if err != nil {
			fmt.Fprintln(e.stderr, "duct bench-load:", err)
			return exitFailure, true
		}
		json.NewEncoder(e.stdout).Encode(res)
		return exitOK, true
	case len(args) == 3 && args[0] == "bench-proxy":
		if err := bench.ServeProxy(args[1], args[2]); err != nil {
			fmt.Fprintln(e.stderr, "duct bench-proxy:", err)
			return exitFailure, true
		}
		return exitOK, true
	case len(args) == 2 && args[0] == "bench-bare":
		if err := bench.ServeBare(args[1]); err != nil {
			fmt.Fprintln(e.stderr, "duct bench-bare:", err)
			return exitFailure, true
		}
		return exitOK, true
	}
	return 0, false
}
