package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/secrets"
)

// serverCmd is `duct server`.
type serverCmd struct {
	addr, data, nats, natsListen, publicURL string
	pubsubAddr                              string
	noSync, insecure, pubsubAuth            bool
	spares, natsReplicas, queueDepth        int
	queueTimeout, buildTimeout, stopTimeout time.Duration
	maxBody, maxUpload                      sizeFlag
	logLevel, logFormat                     string
	instanceCPUs                            float64
	instancePIDs                            int64
}

func (c *serverCmd) info() cmdInfo {
	return cmdInfo{
		name:    "server",
		group:   "Run a server",
		summary: "Run a Duct server",
		usage:   "[flags]",
		help: `
Server runs Duct until interrupted (SIGINT or SIGTERM), then shuts down
gracefully: in-flight requests finish, instances stop, the broker closes.
It serves functions at /fn/NAME and the API at /api/v1/ on --addr.

By default Duct embeds its NATS JetStream broker, storing everything under
--data. With --nats it uses an external cluster instead, so several servers
can share it.

Every API call needs a bearer token. On its first start (no token stored
yet), the server creates an admin token and logs it once, at WARN level:
store it (duct login). DUCT_ADMIN_TOKEN, when set, is accepted as an admin
token too, and no token is created. Functions that do not say who may
invoke them want a token (invoke: token).

With --pubsub-addr the server also speaks Google Cloud Pub/Sub's gRPC
API there: set PUBSUB_EMULATOR_HOST to that address and Google's client
libraries use Duct's topics unchanged. Like Google's emulator, that port
takes no credentials: bind it to loopback or a trusted network, or add
--pubsub-auth to require an API token ("authorization: Bearer TOKEN"
metadata) on every call.

Secrets are encrypted with the key in DIR/secret.key (created on first
start, mode 0600), or DUCT_SECRET_KEY (32 bytes, base64) when set: servers
sharing a NATS must share that key. Logs go to stderr.`,
		examples: `
duct server
duct server --addr 0.0.0.0:8080 --data /var/lib/duct --public-url https://fn.example.com
duct server --pubsub-addr 127.0.0.1:8085    # then PUBSUB_EMULATOR_HOST=127.0.0.1:8085
DUCT_ADMIN_TOKEN=$(openssl rand -hex 32) duct server --log-format json
DUCT_SECRET_KEY=$(cat /etc/duct/secret-key) duct server --nats nats://nats-1:4222,nats://nats-2:4222`,
	}
}

func (c *serverCmd) define(fs *flagSet, e *env) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "HTTP listen `address` for functions and the API")
	fs.StringVar(&c.data, "data", "./data", "`directory` for the embedded broker's store, artifacts and shims")
	fs.StringVar(&c.nats, "nats", "", "external NATS `URLs`, comma-separated (default: embedded)")
	fs.StringVar(&c.natsListen, "nats-listen", "", "let other nodes reach the embedded NATS at this `address`")
	fs.BoolVar(&c.noSync, "no-sync", false, "do not fsync every broker write (faster, loses recent writes on a crash)")
	fs.StringVar(&c.publicURL, "public-url", "", "base `URL` printed for functions (default http://ADDR)")
	fs.StringVar(&c.pubsubAddr, "pubsub-addr", "", "serve Google Cloud Pub/Sub's gRPC API at this `address` (default none)")
	fs.BoolVar(&c.pubsubAuth, "pubsub-auth", false, "require an API token on every call to --pubsub-addr")
	fs.IntVar(&c.spares, "spares", 2, "pre-started Node.js and Python runtimes kept per language; 0 disables")
	fs.BoolVar(&c.insecure, "insecure-no-sandbox", false, "run functions unsandboxed, as the server's user (trusted code only)")
	fs.Float64Var(&c.instanceCPUs, "instance-cpus", 0, "hard CPU quota per sandboxed instance, in CPUs (default none: instances share CPU)")
	fs.Int64Var(&c.instancePIDs, "instance-pids", 512, "processes and threads per sandboxed instance")
	fs.IntVar(&c.natsReplicas, "nats-replicas", 1, "replicas of Duct's streams and buckets on an external NATS cluster")
	fs.IntVar(&c.queueDepth, "queue-depth", 1000, "requests that may wait for an instance slot, per function version")
	fs.DurationVar(&c.queueTimeout, "queue-timeout", 30*time.Second, "how long a request waits for a slot before 429")
	c.maxBody.v, c.maxUpload.v = duct.MaxSyncBody, 64*duct.MiB
	fs.Var(&c.maxBody, "max-body", "largest synchronous request and response `size`")
	fs.Var(&c.maxUpload, "max-upload", "largest deploy upload `size`")
	fs.DurationVar(&c.buildTimeout, "build-timeout", 10*time.Minute, "time limit of one build")
	fs.DurationVar(&c.stopTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests get at shutdown")
	logFlags(fs, &c.logLevel, &c.logFormat, "info")
}

// logFlags defines --log-level and --log-format.
func logFlags(fs *flagSet, level, format *string, def string) {
	*level, *format = def, "text"
	fs.Var(choiceFlag{level, []string{"debug", "info", "warn", "error"}}, "log-level", "least `level` logged: debug, info, warn or error")
	fs.Var(choiceFlag{format, []string{"text", "json"}}, "log-format", "log `format`: text or json")
}

// newLogger returns the server's logger: only the CLI picks a handler.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(strings.ToUpper(level)))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (c *serverCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 0, ""); err != nil {
		return err
	}
	if c.instanceCPUs < 0 || c.instancePIDs < 16 {
		return usageErrorf("--instance-cpus cannot be negative; --instance-pids wants at least 16")
	}
	if c.natsReplicas < 1 || c.natsReplicas > 5 || c.queueDepth < 1 || c.queueTimeout <= 0 || c.buildTimeout <= 0 ||
		c.stopTimeout <= 0 || c.maxBody.v < 1 || c.maxUpload.v < 1 {
		return usageErrorf("--nats-replicas wants 1 to 5; depths, sizes and timeouts must be positive")
	}
	var key []byte
	if s := e.getenv("DUCT_SECRET_KEY"); s != "" {
		var err error
		if key, err = secrets.ParseKey(s); err != nil {
			return usageErrorf("DUCT_SECRET_KEY: %v", err)
		}
	}
	tuneGC(e.getenv)
	d, err := daemon.New(daemon.Config{
		Addr: c.addr, DataDir: c.data, NATS: c.nats, NATSListen: c.natsListen, NoSync: c.noSync,
		PublicURL: c.publicURL, PubSubAddr: c.pubsubAddr, PubSubAuth: c.pubsubAuth, AdminToken: e.getenv("DUCT_ADMIN_TOKEN"), SecretKey: key, Spares: daemonSpares(c.spares),
		NATSReplicas: c.natsReplicas, QueueDepth: c.queueDepth, QueueTimeout: c.queueTimeout,
		MaxRequestBody: int64(c.maxBody.v), MaxResponseBody: int64(c.maxBody.v), MaxUpload: int64(c.maxUpload.v),
		BuildTimeout: c.buildTimeout, ShutdownTimeout: c.stopTimeout, InsecureNoSandbox: c.insecure,
		InstanceCPUs: c.instanceCPUs, InstancePIDs: c.instancePIDs,
		Logger: newLogger(e.stderr, c.logLevel, c.logFormat),
	})
	if err != nil {
		return usageErrorf("%v", err)
	}
	if err := d.Start(ctx); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	<-ctx.Done()
	if err := d.Shutdown(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}

// tuneGC makes the collector run less often than Go's default unless the
// operator set GOGC: a server's live heap is small, and collecting it at
// every doubling costs the invocation path several percent of its CPU.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// daemonSpares turns --spares into the daemon's setting, whose zero means
// its default.
func daemonSpares(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}
