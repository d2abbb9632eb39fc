// Package daemon wires Duct's components into a server and runs it: it
// validates the configuration, starts the broker, store, builder, pools,
// gateway and API in order (undoing what started if a later step fails),
// keeps the data plane in step with the control plane, and shuts down
// gracefully.
package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/async"
	"github.com/duct-dev/duct/internal/toolchain"
)

// Config is the server's configuration. Zero values are useful: they get
// the defaults documented on each field.
type Config struct {
	// Addr is the HTTP listen address for the gateway and the API;
	// default 127.0.0.1:8080. Port 0 picks a free port.
	Addr string
	// DataDir holds the embedded broker's store, the artifact cache and
	// shims; default ./data.
	DataDir string
	// NATS is a comma-separated list of external NATS URLs; empty embeds
	// a server.
	NATS string
	// NATSListen makes the embedded NATS server listen there (for other
	// nodes); empty means no port.
	NATSListen string
	// NATSReplicas is the replica count of Duct's streams and buckets on
	// an external cluster; default 1.
	NATSReplicas int
	// NoSync disables fsync after every broker write (faster, less safe).
	NoSync bool
	// PublicURL is the base URL printed for functions; default
	// http://<Addr>.
	PublicURL string
	// PubSubAddr, when set, serves Google Cloud Pub/Sub's gRPC API
	// (google.pubsub.v1: what Google's clients use with
	// PUBSUB_EMULATOR_HOST) on this address; empty serves none. Port 0
	// picks a free port. Like Google's emulator it takes no credentials
	// unless PubSubAuth is set: bind it to loopback or a trusted network.
	PubSubAddr string
	// PubSubAuth makes the Pub/Sub port require an API token in each
	// call's "authorization" metadata, with the roles the REST API
	// wants for the same operation.
	PubSubAuth bool
	// AdminToken, when set (DUCT_ADMIN_TOKEN), is accepted as an admin
	// token on every node it is given to. It is never stored. Without it,
	// the first start creates an admin token and logs it once.
	AdminToken string
	// SecretKey encrypts secrets in the store: 32 bytes (DUCT_SECRET_KEY,
	// base64). Empty uses DataDir/secret.key, created on first start.
	// Servers sharing a NATS must share the key.
	SecretKey []byte
	// DefaultInvoke is who may invoke a function whose spec does not say:
	// duct.InvokeToken (the default) or duct.InvokePublic.
	DefaultInvoke duct.InvokeMode
	// Spares is how many pre-started runtimes to keep per language in
	// use; default 2, negative disables.
	Spares int
	// QueueDepth and QueueTimeout bound requests waiting for an instance
	// slot, per function version; defaults 1000 and 30s.
	QueueDepth   int
	QueueTimeout time.Duration
	// MaxRequestBody and MaxResponseBody bound synchronous invocations;
	// default 6 MiB, negative unlimited.
	MaxRequestBody, MaxResponseBody int64
	// MaxUpload bounds a deploy upload; default 64 MiB.
	MaxUpload int64
	// BuildTimeout bounds one build; default 10m.
	BuildTimeout time.Duration
	// ShutdownTimeout bounds graceful shutdown; default 30s.
	ShutdownTimeout time.Duration
	// ReapInterval is how often idle instances are reaped; default 500ms.
	ReapInterval time.Duration
	// InsecureNoSandbox runs instances as plain processes of Duct's user,
	// unisolated. Without it, Duct refuses to start where it cannot
	// sandbox, saying what the host lacks.
	InsecureNoSandbox bool
	// InstancePIDs bounds the processes and threads of one sandboxed
	// instance; default 512. InstanceCPUs is each instance's hard CPU
	// quota; by default (0 or negative) there is none, and instances share
	// CPU by weights that grow with their memory.
	InstancePIDs int64
	InstanceCPUs float64
	// TmpSize bounds each sandboxed instance's /tmp (it counts against the
	// function's memory); default 64 MiB.
	TmpSize int64
	// Async tunes asynchronous invocations: retry delays, workers, how
	// long records are kept (see async.Tuning for the defaults).
	Async async.Tuning
	// Tools overrides the language tools found on PATH.
	Tools toolchain.Names
	// GoCache and GoModCache for Go builds; default the host's.
	GoCache, GoModCache string
	Logger              *slog.Logger
}

func (c *Config) applyDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.ReapInterval == 0 {
		c.ReapInterval = 500 * time.Millisecond
	}
	if c.MaxUpload == 0 {
		c.MaxUpload = 64 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.InstancePIDs == 0 {
		c.InstancePIDs = 512
	}
	if c.InstanceCPUs == 0 {
		c.InstanceCPUs = -1
	}
	if c.DefaultInvoke == "" {
		c.DefaultInvoke = duct.InvokeToken
	}
}

func (c *Config) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: %w", c.Addr, err))
	}
	if c.NATSListen != "" {
		if c.NATS != "" {
			errs = append(errs, errors.New("nats-listen applies to the embedded server; it cannot be set with an external --nats"))
		}
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			errs = append(errs, fmt.Errorf("nats-listen %q: %w", c.NATSListen, err))
		}
	}
	if c.PubSubAddr != "" {
		if _, _, err := net.SplitHostPort(c.PubSubAddr); err != nil {
			errs = append(errs, fmt.Errorf("pubsub-addr %q: %w", c.PubSubAddr, err))
		}
	} else if c.PubSubAuth {
		errs = append(errs, errors.New("pubsub-auth applies to the Pub/Sub port: set pubsub-addr too"))
	}
	if c.QueueDepth < 0 || c.QueueTimeout < 0 || c.BuildTimeout < 0 || c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("queue depth and timeouts cannot be negative"))
	}
	if c.MaxUpload < 0 {
		errs = append(errs, errors.New("max upload cannot be negative"))
	}
	if c.DefaultInvoke != duct.InvokeToken && c.DefaultInvoke != duct.InvokePublic {
		errs = append(errs, fmt.Errorf("default invoke %q: want public or token", c.DefaultInvoke))
	}
	if len(c.SecretKey) != 0 && len(c.SecretKey) != 32 {
		errs = append(errs, fmt.Errorf("secret key: %d bytes, want 32", len(c.SecretKey)))
	}
	return errors.Join(errs...)
}
