package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/api"
	"github.com/duct-dev/duct/internal/artifact"
	"github.com/duct-dev/duct/internal/async"
	"github.com/duct-dev/duct/internal/auth"
	"github.com/duct-dev/duct/internal/broker"
	"github.com/duct-dev/duct/internal/builder"
	"github.com/duct-dev/duct/internal/bundle"
	"github.com/duct-dev/duct/internal/deploy"
	"github.com/duct-dev/duct/internal/gateway"
	"github.com/duct-dev/duct/internal/instance"
	"github.com/duct-dev/duct/internal/logs"
	"github.com/duct-dev/duct/internal/metrics"
	"github.com/duct-dev/duct/internal/pool"
	"github.com/duct-dev/duct/internal/pubsub"
	"github.com/duct-dev/duct/internal/sandbox"
	"github.com/duct-dev/duct/internal/secrets"
	"github.com/duct-dev/duct/internal/shim"
	"github.com/duct-dev/duct/internal/store"
	"github.com/duct-dev/duct/internal/toolchain"
	"github.com/duct-dev/duct/internal/trigger"
)

// Version is Duct's version, reported by the API and the CLI.
var Version = "0.1.0-dev"

// Daemon is a running Duct server.
type Daemon struct {
	cfg Config
	log *slog.Logger

	tools    toolchain.Set
	broker   *broker.Broker
	store    *store.Store
	tokens   *store.Tokens
	auth     *auth.Service
	secrets  *secrets.Secrets
	logs     *logs.Log
	metrics  *metrics.Registry
	cache    *artifact.Cache
	launcher *instance.Launcher
	pools    *pool.Manager
	builder  *builder.Builder
	deploy   *deploy.Service
	gateway  *gateway.Gateway
	api      *api.API
	pubsub   *pubsub.Broker
	pubsubLn net.Listener // the Pub/Sub gRPC API's, when served
	async    *async.Service
	triggers *trigger.Manager // schedules, topic triggers, HTTP routes, event ingress

	ln     net.Listener
	server *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup

	jailer      *sandbox.Jailer // nil when unsandboxed
	sandboxNote string          // what isolation instances get, for status

	applyLocks keyedMutex
	mu         sync.Mutex          // guards applied and uses
	applied    map[string]int      // function → version this node serves
	uses       map[string][]string // function → secrets its serving version references
	started    time.Time

	stopping chan struct{} // closed when Shutdown begins
	stopOnce sync.Once
	undo     []func() // teardown, in reverse start order
}

// New validates cfg and returns a daemon ready to Start.
func New(cfg Config) (*Daemon, error) {
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &Daemon{cfg: cfg, log: cfg.Logger, applied: map[string]int{}, uses: map[string][]string{}, stopping: make(chan struct{})}, nil
}

// Start brings the server up and returns once it accepts requests. On error
// everything already started is stopped again.
func (d *Daemon) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			d.teardown()
		}
	}()
	d.started = time.Now()
	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.undo = append(d.undo, cancel)

	if err := os.MkdirAll(d.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	d.tools = toolchain.Detect(ctx, d.cfg.Tools)
	for name, t := range map[string]toolchain.Tool{"go": d.tools.Go, "node": d.tools.Node, "python": d.tools.Python} {
		if !t.OK() {
			d.log.Warn("runtime unavailable", "runtime", name, "reason", t.Missing)
		}
	}
	shims, err := shim.Install(filepath.Join(d.cfg.DataDir, "shims"))
	if err != nil {
		return err
	}

	d.broker, err = broker.Open(ctx, broker.Config{
		URL: d.cfg.NATS, DataDir: d.cfg.DataDir, Listen: d.cfg.NATSListen, NoSync: d.cfg.NoSync,
		Replicas: d.cfg.NATSReplicas, Logger: d.log,
	})
	if err != nil {
		return err
	}
	d.undo = append(d.undo, func() { d.broker.Close() })
	if d.store, err = store.Open(ctx, d.broker, d.log); err != nil {
		return err
	}
	secretStore, err := d.startAccess(ctx, runCtx)
	if err != nil {
		return err
	}
	d.metrics = metrics.New()
	if d.logs, err = logs.Open(ctx, d.broker, logs.Config{Dropped: d.metrics.LogsDropped(), Logger: d.log}); err != nil {
		return err
	}
	d.undo = append(d.undo, d.logs.Close)
	if d.cache, err = artifact.New(filepath.Join(d.cfg.DataDir, "artifacts"), d.store); err != nil {
		return err
	}

	runDir := filepath.Join(d.cfg.DataDir, "run")
	os.RemoveAll(runDir) // sockets of instances that died with a previous run
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return err
	}
	lcfg := instance.Config{
		RunDir: runDir,
		Node:   d.tools.Node.Path, Python: d.tools.Python.Path,
		NodeShim: shims.Node, PythonShim: shims.Python,
		Spares: d.cfg.Spares, Logs: d.logs, Logger: d.log,
		PIDs: d.cfg.InstancePIDs, CPUs: max(d.cfg.InstanceCPUs, 0),
	}
	if err := d.startSandbox(&lcfg, shims); err != nil {
		return err
	}
	d.launcher = instance.New(lcfg)
	d.undo = append(d.undo, d.launcher.Close)
	d.pools = pool.NewManager(d.launcher, pool.Options{QueueDepth: d.cfg.QueueDepth, QueueTimeout: d.cfg.QueueTimeout}, d.metrics, d.log)
	d.undo = append(d.undo, d.pools.Shutdown)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.pools.Run(runCtx, d.cfg.ReapInterval)
	}()

	d.builder = builder.New(builder.Config{
		Tools: d.tools, GoCache: d.cfg.GoCache, GoModCache: d.cfg.GoModCache, Timeout: d.cfg.BuildTimeout, Logger: d.log,
	})
	tmp := filepath.Join(d.cfg.DataDir, "tmp")
	os.RemoveAll(tmp) // builds interrupted by a crash
	d.deploy, err = deploy.New(deploy.Config{
		Store: d.store, Builder: d.builder, Checker: checker{d.launcher, d.target}, Cache: d.cache,
		Secrets: d.secrets, DefaultInvoke: d.cfg.DefaultInvoke, Vet: d.vetSpec,
		WorkDir: tmp, Logger: d.log, Limits: bundle.Limits{MaxArchive: d.cfg.MaxUpload},
	})
	if err != nil {
		return err
	}

	// The message broker comes before its users: topic triggers and
	// asynchronous invocations' destinations publish to it.
	if err := d.startPubSub(ctx); err != nil {
		return err
	}
	if err := d.openTriggers(ctx); err != nil {
		return err
	}
	// Serve what is deployed before accepting requests: a restarted node
	// answers its first request with every function in place.
	if err := d.syncAll(ctx); err != nil {
		return err
	}
	watch, err := d.store.Watch(runCtx)
	if err != nil {
		return err
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.follow(runCtx, watch)
	}()
	secretChanges, err := secretStore.Watch(runCtx)
	if err != nil {
		return err
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.followSecrets(runCtx, secretChanges)
	}()

	if err := d.openAsync(ctx); err != nil {
		return err
	}
	d.gateway = gateway.New(gateway.Config{
		Router: d.pools, Logs: d.logs, Auth: d.auth, Logger: d.log, Queue: d.async,
		MaxRequestBody: d.cfg.MaxRequestBody, MaxResponseBody: d.cfg.MaxResponseBody,
	})
	d.api = api.New(api.Config{
		Store: d.store, Deploy: d.deploy, Logs: d.logs, Instances: d.pools,
		Applied: d.apply, Removed: d.remove, Status: d.status, BaseURL: d.baseURL,
		Auth: d.auth, Secrets: d.secrets, SecretChanged: d.secretChanged, PubSub: d.pubsub,
		MaxUpload: d.cfg.MaxUpload, Stopping: d.stopping, Logger: d.log, Invocations: d.async,
		Triggers: d.triggers,
	})
	if err := d.servePubSub(); err != nil {
		return err
	}
	d.startAsync()
	d.runTriggers()
	return d.listen()
}

// startAccess opens the token and secret stores: it issues the first
// admin token on a new store (logging it once), loads the secret key and
// checks that it opens the stored secrets, and keeps the token cache in
// step with revocations made on any node. It returns the secret store,
// for its watch.
func (d *Daemon) startAccess(ctx, runCtx context.Context) (*store.Secrets, error) {
	var err error
	if d.tokens, err = store.OpenTokens(ctx, d.broker, d.log); err != nil {
		return nil, err
	}
	d.auth = auth.New(auth.Config{Tokens: d.tokens, AdminToken: d.cfg.AdminToken, Logger: d.log})
	changes, err := d.tokens.Watch(runCtx)
	if err != nil {
		return nil, err
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.auth.Follow(changes)
	}()
	first, err := d.auth.Bootstrap(ctx)
	if err != nil {
		return nil, err
	}
	if first != "" {
		d.log.Warn("first start: created an admin token for the API. It is shown only this once: store it now "+
			"(duct login --token TOKEN), or create others with it and revoke it", "token", first)
	}
	key, err := secrets.LoadKey(d.cfg.DataDir, d.cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	st, err := store.OpenSecrets(ctx, d.broker, d.log)
	if err != nil {
		return nil, err
	}
	if d.secrets, err = secrets.New(st, key); err != nil {
		return nil, err
	}
	unopened, err := d.secrets.Verify(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: start with the key that sealed them (DUCT_SECRET_KEY, or %s)", err, filepath.Join(d.cfg.DataDir, secrets.KeyFile))
	}
	if len(unopened) > 0 {
		d.log.Error("some secrets do not open with this server's key: set them again", "secrets", unopened)
	}
	return st, nil
}

func (d *Daemon) listen() error {
	ln, err := net.Listen("tcp", d.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	d.ln = ln
	d.server = &http.Server{
		Handler:           d.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server", "err", err)
		}
	}()
	// Stopping begins by ending the background loops (reaper, store
	// watch), before instances and the broker go.
	d.undo = append(d.undo, d.cancel)
	d.log.Info("duct serving", "addr", ln.Addr().String(), "data", d.cfg.DataDir, "nats", d.natsMode())
	return nil
}

func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(gateway.Prefix, d.gateway)
	mux.Handle(api.Prefix, d.api)
	mux.Handle("GET /metrics", d.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if d.broker.Conn.IsConnected() {
			w.Write([]byte("ok\n"))
			return
		}
		http.Error(w, "broker disconnected", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Duct %s\nfunctions: %s/fn/{name}\napi: %s/api/v1/ (OpenAPI at /api/v1/openapi.json)\n",
			Version, d.baseURL(r), d.baseURL(r))
	})
	// Invocations skip the mux's pattern matching: they are the hot path.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, gateway.Prefix) {
			d.gateway.ServeHTTP(w, r)
			return
		}
		if d.serveRoute(w, r) { // HTTP triggers, which never shadow Duct's own paths
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Addr is the address the server listens on.
func (d *Daemon) Addr() string { return d.ln.Addr().String() }

// URL is the server's base URL.
func (d *Daemon) URL() string { return "http://" + d.Addr() }

// Shutdown stops accepting requests, lets in-flight ones finish (bounded by
// ctx and the configured timeout), stops every instance and closes the
// broker.
func (d *Daemon) Shutdown(ctx context.Context) error {
	var err error
	d.stopOnce.Do(func() {
		close(d.stopping)
		ctx, cancel := context.WithTimeout(ctx, d.cfg.ShutdownTimeout)
		defer cancel()
		if d.server != nil {
			err = d.server.Shutdown(ctx)
			if err != nil {
				d.server.Close()
			}
		}
		d.teardown()
	})
	return err
}

func (d *Daemon) teardown() {
	for i := len(d.undo) - 1; i >= 0; i-- {
		d.undo[i]()
	}
	d.undo = nil
	d.wg.Wait()
}

func (d *Daemon) natsMode() string {
	if d.cfg.NATS != "" {
		return "external"
	}
	if u := d.broker.ClientURL(); u != "" {
		return "embedded, listening on " + u
	}
	return "embedded"
}

func (d *Daemon) baseURL(r *http.Request) string {
	if d.cfg.PublicURL != "" {
		return strings.TrimSuffix(d.cfg.PublicURL, "/")
	}
	if r != nil && r.Host != "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		return scheme + "://" + r.Host
	}
	return d.URL()
}

// Status is what GET /api/v1/status answers.
type Status struct {
	Version  string        `json:"version"`
	Sandbox  string        `json:"sandbox"`
	Started  time.Time     `json:"started"`
	DataDir  string        `json:"dataDir"`
	NATS     string        `json:"nats"`
	Tools    toolchain.Set `json:"toolchain"`
	Runtimes []string      `json:"runtimes"`
}

func (d *Daemon) status() any {
	s := Status{Version: Version, Sandbox: d.sandboxNote, Started: d.started, DataDir: d.cfg.DataDir, NATS: d.natsMode(), Tools: d.tools}
	for _, r := range duct.Runtimes {
		if _, err := d.tools.For(r); err == nil {
			s.Runtimes = append(s.Runtimes, string(r))
		}
	}
	return s
}

// Instances lists the live instances of a function on this node.
func (d *Daemon) Instances(name string) []duct.InstanceInfo { return d.pools.Instances(name) }

// ScaleToZero stops the idle instances of a function on this node now,
// minimum instances included (they come back on the next tick).
func (d *Daemon) ScaleToZero(name string) {
	if p := d.pools.Lookup(name); p != nil {
		p.StopIdle()
	}
}

// SparesReady counts pre-started instances on this node that can become
// functions of runtime r (with the default network).
func (d *Daemon) SparesReady(r duct.Runtime) int {
	return d.launcher.SparesReady(duct.Function{Runtime: r}.WithDefaults())
}

// Sandboxed reports whether this node runs instances in sandboxes.
func (d *Daemon) Sandboxed() bool { return d.launcher.Sandboxed() }

// startSandbox prepares the jailer instances run in, or explains why it
// cannot and the server must not start (unless told to run unsandboxed).
func (d *Daemon) startSandbox(lcfg *instance.Config, shims shim.Paths) error {
	if d.cfg.InsecureNoSandbox {
		d.log.Warn("running functions WITHOUT a sandbox (--insecure-no-sandbox): every function can read the server's files, " +
			"every other function's environment and secrets, and the network")
		d.sandboxNote = "disabled by --insecure-no-sandbox"
		return nil
	}
	// Inside a sandbox only /usr, /bin, /lib… of the host exist: expose
	// the interpreters that live elsewhere (a version manager's Python,
	// say) and Duct's shims.
	shimDir := filepath.Dir(shims.Node)
	expose := []sandbox.Expose{{Host: shimDir, Target: sandboxShims}}
	for _, tool := range []toolchain.Tool{d.tools.Node, d.tools.Python} {
		if !tool.OK() {
			continue
		}
		prefix := filepath.Dir(filepath.Dir(tool.Path))
		if !underSystemDirs(prefix) {
			expose = append(expose, sandbox.Expose{Host: prefix, Target: prefix})
		}
	}
	j, err := sandbox.New(sandbox.Config{Expose: expose, TmpSize: d.cfg.TmpSize, CPUQuota: d.cfg.InstanceCPUs > 0, Logger: d.log})
	if err != nil {
		return fmt.Errorf("%w\nDuct sandboxes every function instance and will not run them unisolated unless told: "+
			"fix the host, or start with --insecure-no-sandbox for trusted code only", err)
	}
	d.jailer = j
	d.undo = append(d.undo, j.Close)
	lcfg.Jailer = j
	lcfg.NodeShim = filepath.Join(sandboxShims, filepath.Base(shims.Node))
	lcfg.PythonShim = filepath.Join(sandboxShims, filepath.Base(shims.Python))
	f := j.Features()
	d.sandboxNote = fmt.Sprintf("namespaces (user, mount, pid, ipc, uts, net), cgroup v%d limits, seccomp, no capabilities", f.Cgroups)
	d.log.Info("sandbox ready", "cgroups", f.Cgroups)
	return nil
}

// sandboxShims is where the shims appear inside sandboxes.
const sandboxShims = "/duct/shims"

func underSystemDirs(p string) bool {
	for _, d := range []string{"/usr", "/bin", "/sbin", "/lib", "/lib64"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
