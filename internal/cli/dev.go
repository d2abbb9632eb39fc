package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/client"
	"github.com/duct-dev/duct/internal/daemon"
)

// devCmd is `duct dev`.
type devCmd struct {
	addr, data          string
	pubsubAddr          string
	fs                  *flagSet // to tell flags given from defaults
	keep, insecure      bool
	spares              int
	logLevel, logFormat string
	interval            time.Duration
}

func (c *devCmd) info() cmdInfo {
	return cmdInfo{
		name:    "dev",
		group:   "Run a server",
		summary: "Run a local server that deploys a folder of functions and redeploys on change",
		usage:   "[DIR] [flags]",
		help: `
Dev starts a Duct server in this process, deploys every function in DIR
(default "."), prints their URLs, and then watches the files: when a
function's files change it is rebuilt and redeployed, and the result or the
build error is printed. Stop it with Ctrl-C.

A function is a subdirectory of DIR holding a duct.yaml or source files
(.go, .js, .mjs, .py, go.mod, package.json, requirements.txt). If DIR holds
one itself, DIR is deployed, with any subdirectories that have a duct.yaml
of their own. Functions deployed by dev are public unless duct.yaml says
otherwise.

Google's Pub/Sub client libraries reach the dev server's topics with
PUBSUB_EMULATOR_HOST=127.0.0.1:8085 (--pubsub-addr; loopback only, no
credentials, as with Google's emulator).

State lives in a temporary directory, removed at exit, unless --data names
one (or --keep keeps the temporary one); for speed, dev does not fsync it.

The dev server's API wants a token like any other: dev makes DUCT_TOKEN its
admin token when it is set, else it makes one up for this run and prints the
line that exports it, for other duct commands in another shell.`,
		examples: `
duct dev ./functions
duct dev . --addr 127.0.0.1:9000
duct dev ./functions --data ./.duct-data       # keep versions between runs`,
		complete: "dir",
	}
}

func (c *devCmd) define(fs *flagSet, e *env) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "HTTP listen `address`")
	fs.StringVar(&c.pubsubAddr, "pubsub-addr", "127.0.0.1:8085", "serve Google Cloud Pub/Sub's gRPC API at this `address` (\"\" for none)")
	c.fs = fs
	fs.StringVar(&c.data, "data", "", "data `directory` (default: a temporary one, removed at exit)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary data directory at exit")
	fs.IntVar(&c.spares, "spares", 2, "pre-started Node.js and Python runtimes kept per language; 0 disables")
	fs.BoolVar(&c.insecure, "insecure-no-sandbox", false, "run functions unsandboxed, as your user (trusted code only)")
	logFlags(fs, &c.logLevel, &c.logFormat, "warn")
	c.interval = 500 * time.Millisecond
}

func (c *devCmd) run(ctx context.Context, e *env, args []string) (err error) {
	if err := wantArgs(args, 0, 1, "DIR"); err != nil {
		return err
	}
	dir := "."
	if len(args) == 1 {
		dir = args[0]
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return fmt.Errorf("dev: %s is not a directory", dir)
	}

	data, cleanup, err := c.dataDir()
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer cleanup(e.stderr)
	token, made := e.getenv("DUCT_TOKEN"), false
	if token == "" {
		token, made = devToken(), true
	}
	d, err := c.start(ctx, e, daemon.Config{
		Addr: c.addr, PubSubAddr: c.pubsubAddr, DataDir: data, NoSync: true, Spares: daemonSpares(c.spares),
		AdminToken: token, DefaultInvoke: duct.InvokePublic, InsecureNoSandbox: c.insecure,
		Logger: newLogger(e.stderr, c.logLevel, c.logFormat),
	})
	if err != nil {
		return err
	}
	defer func() {
		if serr := d.Shutdown(context.WithoutCancel(ctx)); serr != nil && err == nil {
			err = fmt.Errorf("dev: shutdown: %w", serr)
		}
	}()
	cl, err := client.New(d.URL(), token, client.WithUserAgent("duct-dev/"+daemon.Version))
	if err != nil {
		return err
	}
	where := "removed at exit"
	if c.data != "" || c.keep {
		where = "kept"
	}
	fmt.Fprintf(e.stdout, "Duct dev server at %s (data in %s, %s)\n", d.URL(), data, where)
	if a := d.PubSubAddr(); a != "" {
		fmt.Fprintf(e.stdout, "Google Cloud Pub/Sub clients: export PUBSUB_EMULATOR_HOST=%s\n", a)
	}
	if made {
		fmt.Fprintf(e.stdout, "Its API token, for duct commands in another shell (this run only):\n  export DUCT_SERVER=%s DUCT_TOKEN=%s\n\n", d.URL(), token)
	} else {
		fmt.Fprintf(e.stdout, "Its API token is your DUCT_TOKEN.\n\n")
	}

	w := &devWatch{root: root, dir: dir, ignore: data, cl: cl, out: e.stdout, errOut: e.stderr, funcs: map[string]*devFunc{}}
	w.scan(ctx, true)
	fmt.Fprintf(e.stdout, "\nWatching %s for changes (Ctrl-C to stop).\n", dir)
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(e.stdout, "Stopping.")
			return nil
		case <-tick.C:
			w.scan(ctx, false)
		}
	}
}

// devToken makes up an admin token for one run of duct dev.
func devToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "ductdev_" + base64.RawURLEncoding.EncodeToString(b)
}

// dataDir returns the data directory and what to do with it at exit.
func (c *devCmd) dataDir() (string, func(io.Writer), error) {
	if c.data != "" {
		abs, err := filepath.Abs(c.data)
		return abs, func(io.Writer) {}, err
	}
	tmp, err := os.MkdirTemp("", "duct-dev-")
	if err != nil {
		return "", nil, err
	}
	return tmp, func(w io.Writer) {
		if c.keep {
			fmt.Fprintf(w, "duct: data kept in %s\n", tmp)
			return
		}
		if err := os.RemoveAll(tmp); err != nil {
			fmt.Fprintf(w, "duct: removing %s: %v\n", tmp, err)
		}
	}, nil
}

// start starts the dev server. The default Pub/Sub address is a
// convenience: when something else holds it (another dev server, Google's
// emulator), dev says so and runs without it.
func (c *devCmd) start(ctx context.Context, e *env, cfg daemon.Config) (*daemon.Daemon, error) {
	optional := cfg.PubSubAddr != "" && !c.fs.set("pubsub-addr")
	withoutPubSub := func() {
		fmt.Fprintf(e.stderr, "duct dev: %s is in use: not serving the Pub/Sub gRPC API (pick an address with --pubsub-addr)\n", cfg.PubSubAddr)
		cfg.PubSubAddr = ""
	}
	if optional && !canListen(cfg.PubSubAddr) {
		withoutPubSub()
	}
	d, err := startDaemon(ctx, cfg)
	if err != nil && optional && cfg.PubSubAddr != "" && errors.Is(err, syscall.EADDRINUSE) && !canListen(cfg.PubSubAddr) {
		// Taken between the check and the start.
		withoutPubSub()
		d, err = startDaemon(ctx, cfg)
	}
	return d, err
}

func startDaemon(ctx context.Context, cfg daemon.Config) (*daemon.Daemon, error) {
	d, err := daemon.New(cfg)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	if err := d.Start(ctx); err != nil {
		return nil, fmt.Errorf("dev: start server: %w", err)
	}
	return d, nil
}

// canListen reports whether addr can be listened on now.
func canListen(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
