// Package bench measures Duct against a baseline in the same run: warm
// throughput and latency of a Go no-op function through the gateway beside
// a bare Go net/http server, and cold starts from zero instances for each
// runtime. `duct bench` prints its report.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/bundle"
	"github.com/duct-dev/duct/internal/daemon"
)

// Config says what to measure. Zero values get defaults.
type Config struct {
	// Duration of each warm run; default 5s (after a 1s warm-up).
	Duration time.Duration
	// Conns are the connection counts of the warm runs; default 1 and 50.
	Conns []int
	// ColdSamples per runtime; default 30.
	ColdSamples int
	// Runtimes to cold-start; default go, node, python.
	Runtimes []duct.Runtime
	// Generator is "wrk" or "builtin"; default wrk when on PATH.
	Generator string
	// Spawn makes a command running this program with args; the builtin
	// generator and the bare server then run as their own processes, as
	// wrk and a function instance do. Nil runs them in this process.
	Spawn func(args ...string) *exec.Cmd
	// InsecureNoSandbox runs the measured server without sandboxes (for
	// hosts that cannot sandbox).
	InsecureNoSandbox bool
	// Progress receives a line per step; nil discards.
	Progress func(string)
	Logger   *slog.Logger
}

// Report holds every figure of a run.
type Report struct {
	Generator string    `json:"generator"`
	CPUs      int       `json:"cpus"`
	GoVersion string    `json:"goVersion"`
	Warm      []WarmRow `json:"warm"`
	Cold      []ColdRow `json:"cold"`
	// Sandboxed says whether the measured server sandboxed its instances;
	// ColdUnsandboxed then holds the same cold starts measured, in the
	// same run, on a second server without sandboxes.
	Sandboxed       bool      `json:"sandboxed"`
	ColdUnsandboxed []ColdRow `json:"coldUnsandboxed,omitempty"`
	// SupervisorPSS is the proportional set size of one sandbox's
	// supervisor, the process the sandbox adds to each instance (its
	// share of pages it shares with other supervisors counted pro rata).
	SupervisorPSS int64 `json:"supervisorPSS,omitempty"`
	// Ratio is gateway over bare throughput at the highest connection
	// count (target ≥ 0.5); AddedP50 the gateway's added median latency at
	// one connection (target ≤ 0.1 ms).
	Ratio    float64       `json:"ratio"`
	AddedP50 time.Duration `json:"addedP50"`
}

// WarmRow is one warm measurement.
type WarmRow struct {
	Target string `json:"target"`
	Conns  int    `json:"conns"`
	Result
}

// ColdRow summarises cold starts of one runtime.
type ColdRow struct {
	Runtime duct.Runtime  `json:"runtime"`
	Samples int           `json:"samples"`
	P50     time.Duration `json:"p50"`
	P95     time.Duration `json:"p95"`
	Max     time.Duration `json:"max"`
}

const (
	targetBare   = "bare Go net/http"
	targetProxy  = "Go httputil.ReverseProxy → bare"
	targetDuct   = "duct → Go fn (concurrency 100)"
	targetDuctC1 = "duct → Go fn (concurrency 1)"
)

func (c *Config) defaults() {
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if len(c.Conns) == 0 {
		c.Conns = []int{1, 50}
	}
	if c.ColdSamples == 0 {
		c.ColdSamples = 30
	}
	if len(c.Runtimes) == 0 {
		c.Runtimes = []duct.Runtime{duct.RuntimeGo, duct.RuntimeNode, duct.RuntimePython}
	}
	if c.Generator == "" {
		c.Generator = "builtin"
		if _, err := exec.LookPath("wrk"); err == nil {
			c.Generator = "wrk"
		}
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run measures and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	rep := &Report{Generator: cfg.Generator, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	dir, err := os.MkdirTemp("", "duct-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	cfg.Progress("starting an in-process Duct on loopback (data in " + dir + ")")
	d, err := startServer(ctx, dir, cfg.InsecureNoSandbox, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer d.Shutdown(context.Background())
	rep.Sandboxed = d.Sandboxed()

	cfg.Progress("deploying a Go no-op function")
	if err := deploy(ctx, d.URL(), "noop", noop[duct.RuntimeGo], `{"concurrency": 100}`); err != nil {
		return nil, err
	}
	if err := deploy(ctx, d.URL(), "noop1", noop[duct.RuntimeGo], `{"concurrency": 1}`); err != nil {
		return nil, err
	}
	bare, stop, err := startHelper(cfg, "bench-bare")
	if err != nil {
		return nil, err
	}
	defer stop()
	proxy, stopProxy, err := startHelper(cfg, "bench-proxy", bare)
	if err != nil {
		return nil, err
	}
	defer stopProxy()

	targets := []struct{ name, url string }{
		{targetBare, bare},
		{targetProxy, proxy},
		{targetDuct, d.URL() + "/fn/noop"},
		{targetDuctC1, d.URL() + "/fn/noop1"},
	}
	for _, conns := range cfg.Conns {
		for _, t := range targets {
			cfg.Progress(fmt.Sprintf("warm: %s, %d connection(s), %s", t.name, conns, cfg.Duration))
			if _, err := load(ctx, cfg, t.url, conns, time.Second); err != nil { // warm-up
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			res, err := load(ctx, cfg, t.url, conns, cfg.Duration)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			rep.Warm = append(rep.Warm, WarmRow{Target: t.name, Conns: conns, Result: res})
		}
	}
	rep.summarise(cfg.Conns)

	for _, r := range cfg.Runtimes {
		row, err := coldStarts(ctx, cfg, d, r)
		if err != nil {
			return nil, fmt.Errorf("cold start %s: %w", r, err)
		}
		rep.Cold = append(rep.Cold, row)
		if r == duct.RuntimeGo && rep.Sandboxed {
			rep.SupervisorPSS = supervisorPSS(d, "cold-go")
		}
	}
	if rep.Sandboxed && len(cfg.Runtimes) > 0 {
		// The same cold starts without sandboxes, for comparison.
		dir2, err := os.MkdirTemp("", "duct-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir2)
		cfg.Progress("starting a second Duct without sandboxes, for comparison")
		d2, err := startServer(ctx, dir2, true, cfg.Logger)
		if err != nil {
			return nil, err
		}
		defer d2.Shutdown(context.Background())
		for _, r := range cfg.Runtimes {
			row, err := coldStarts(ctx, cfg, d2, r)
			if err != nil {
				return nil, fmt.Errorf("cold start %s without sandbox: %w", r, err)
			}
			rep.ColdUnsandboxed = append(rep.ColdUnsandboxed, row)
		}
	}
	return rep, nil
}

func startServer(ctx context.Context, dir string, insecure bool, log *slog.Logger) (*daemon.Daemon, error) {
	// Functions are public, as the load generators send no token; the
	// deploys use a token made up for the run.
	d, err := daemon.New(daemon.Config{Addr: "127.0.0.1:0", DataDir: dir, InsecureNoSandbox: insecure, Logger: log,
		AdminToken: adminToken, DefaultInvoke: duct.InvokePublic})
	if err != nil {
		return nil, err
	}
	if err := d.Start(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// supervisorPSS warms one instance of fn and reads its supervisor's
// proportional set size.
func supervisorPSS(d *daemon.Daemon, fn string) int64 {
	resp, err := http.Get(d.URL() + "/fn/" + fn)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, in := range d.Instances(fn) {
		if in.PID == 0 {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", in.PID))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Pss:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				return kb << 10
			}
		}
	}
	return 0
}

func (rep *Report) summarise(conns []int) {
	find := func(target string, c int) *WarmRow {
		for i := range rep.Warm {
			if rep.Warm[i].Target == target && rep.Warm[i].Conns == c {
				return &rep.Warm[i]
			}
		}
		return nil
	}
	hi, lo := conns[len(conns)-1], conns[0]
	if b, g := find(targetBare, hi), find(targetDuct, hi); b != nil && g != nil && b.RPS > 0 {
		rep.Ratio = g.RPS / b.RPS
	}
	if b, g := find(targetBare, lo), find(targetDuct, lo); b != nil && g != nil {
		rep.AddedP50 = g.P50 - b.P50
	}
}

var noop = map[duct.Runtime]map[string]string{
	duct.RuntimeGo:     {"fn.go": "package function\n\nimport \"net/http\"\n\nfunc Handle(w http.ResponseWriter, r *http.Request) { w.Write([]byte(\"hello\")) }\n"},
	duct.RuntimeNode:   {"index.js": "exports.handler = async (req, res) => { res.send('hello'); };\n"},
	duct.RuntimePython: {"main.py": "def handler(request):\n    return 'hello'\n"},
}

// coldStarts times requests that find no instance: each sample first stops
// the function's instances and waits for a pre-started runtime, as an idle
// server would have.
func coldStarts(ctx context.Context, cfg Config, d *daemon.Daemon, r duct.Runtime) (ColdRow, error) {
	name := "cold-" + string(r)
	cfg.Progress(fmt.Sprintf("cold: deploying a %s no-op function", r))
	if err := deploy(ctx, d.URL(), name, noop[r], ""); err != nil {
		return ColdRow{}, err
	}
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	url := d.URL() + "/fn/" + name
	var lat []time.Duration
	for i := range cfg.ColdSamples {
		d.ScaleToZero(name)
		// An idle server has its spares ready: wait for them, so that a
		// sample measures a cold start, not a replacement spare starting
		// beside it.
		for wait := 0; wait < 200 && (r != duct.RuntimeGo || d.Sandboxed()) && d.SparesReady(r) < 2; wait++ {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // let the machine settle
		t0 := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			return ColdRow{}, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return ColdRow{}, fmt.Errorf("sample %d: status %d", i, resp.StatusCode)
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	row := ColdRow{Runtime: r, Samples: len(lat), P50: percentile(lat, 0.5), P95: percentile(lat, 0.95), Max: lat[len(lat)-1]}
	cfg.Progress(fmt.Sprintf("cold: %s p50 %s p95 %s", r, ms(row.P50), ms(row.P95)))
	return row, nil
}

// deploy uploads files as a function through the API.
func deploy(ctx context.Context, base, name string, files map[string]string, spec string) error {
	dir, err := os.MkdirTemp("", "duct-bench-src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
			return err
		}
	}
	var archive bytes.Buffer
	if err := bundle.Pack(dir, &archive, nil); err != nil {
		return err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if spec != "" {
		w, _ := mw.CreateFormField("spec")
		io.WriteString(w, spec)
	}
	w, _ := mw.CreateFormFile("source", "source.tar.gz")
	w.Write(archive.Bytes())
	mw.Close()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/functions/"+name+"/versions", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("deploy %s: %d %s", name, resp.StatusCode, b)
	}
	return nil
}

// adminToken is the API token of the servers bench starts.
var adminToken = func() string {
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}()

// startHelper starts a reference server (bench-bare, or bench-proxy in
// front of the URL in args) and returns its URL.
func startHelper(cfg Config, kind string, args ...string) (string, func(), error) {
	handler := BareHandler()
	if kind == "bench-proxy" {
		h, err := ProxyHandler(args[0])
		if err != nil {
			return "", nil, err
		}
		handler = h
	}
	if cfg.Spawn == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		srv := &http.Server{Handler: handler}
		go srv.Serve(ln)
		return "http://" + ln.Addr().String() + "/", func() { srv.Close() }, nil
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := cfg.Spawn(append([]string{kind, addr}, args...)...)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 500 {
			stop()
			return "", nil, errors.New(kind + " did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "http://" + addr + "/", stop, nil
}

// ProxyHandler is the standard library's reverse proxy to target: the
// cost of one plain Go proxy hop, for comparison.
func ProxyHandler(target string) (http.Handler, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.Transport = &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}
	p.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	return p, nil
}

// ServeProxy runs the reference proxy on addr until it fails.
func ServeProxy(addr, target string) error {
	h, err := ProxyHandler(target)
	if err != nil {
		return err
	}
	return http.ListenAndServe(addr, h)
}

// BareHandler is the baseline: Go's net/http answering "hello".
func BareHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
}

// ServeBare runs the baseline server on addr until it fails.
func ServeBare(addr string) error { return http.ListenAndServe(addr, BareHandler()) }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// load runs one measurement with the configured generator.
func load(ctx context.Context, cfg Config, url string, conns int, d time.Duration) (Result, error) {
	switch {
	case cfg.Generator == "wrk":
		return wrk(ctx, url, conns, d)
	case cfg.Spawn != nil:
		cmd := cfg.Spawn("bench-load", url, fmt.Sprint(conns), d.String())
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return Result{}, fmt.Errorf("load generator: %w", err)
		}
		var r Result
		return r, json.Unmarshal(out, &r)
	}
	return Load(ctx, url, conns, d)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// Print writes the report as tables.
func (rep *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\nWarm: Go no-op function, %s load generator, %d CPUs, %s\n", rep.Generator, rep.CPUs, rep.GoVersion)
	fmt.Fprintf(w, "%-34s %6s %10s %10s %10s\n", "target", "conns", "req/s", "p50", "p99")
	for _, r := range rep.Warm {
		fmt.Fprintf(w, "%-34s %6d %10.0f %10s %10s\n", r.Target, r.Conns, r.RPS, ms(r.P50), ms(r.P99))
	}
	fmt.Fprintf(w, "\nthroughput ratio duct/bare at %d connections: %.2f (target ≥ 0.5)\n", maxConns(rep.Warm), rep.Ratio)
	fmt.Fprintf(w, "added p50 latency at 1 connection: %s (target ≤ 0.10 ms)\n", ms(rep.AddedP50))
	if len(rep.Cold) > 0 {
		mode := "without sandboxes (--insecure-no-sandbox)"
		if rep.Sandboxed {
			mode = "with the full sandbox"
		}
		fmt.Fprintf(w, "\nCold start from zero instances %s, client-measured request latency\n", mode)
		printCold(w, rep.Cold)
		if len(rep.ColdUnsandboxed) > 0 {
			fmt.Fprintf(w, "\nThe same without sandboxes, same run\n")
			printCold(w, rep.ColdUnsandboxed)
		}
		fmt.Fprintf(w, "(target p50 ≤ 10 ms for every runtime)\n")
	}
	if rep.SupervisorPSS > 0 {
		fmt.Fprintf(w, "\nMemory the sandbox adds per instance (its supervisor's proportional set size): %.1f MiB\n",
			float64(rep.SupervisorPSS)/(1<<20))
	}
}

func printCold(w io.Writer, rows []ColdRow) {
	fmt.Fprintf(w, "%-8s %8s %10s %10s %10s\n", "runtime", "samples", "p50", "p95", "max")
	for _, c := range rows {
		fmt.Fprintf(w, "%-8s %8d %10s %10s %10s\n", c.Runtime, c.Samples, ms(c.P50), ms(c.P95), ms(c.Max))
	}
}

func maxConns(rows []WarmRow) int {
	m := 0
	for _, r := range rows {
		m = max(m, r.Conns)
	}
	return m
}

// String is the report as text.
func (rep *Report) String() string {
	var b strings.Builder
	rep.Print(&b)
	return b.String()
}
