package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/api"
	"github.com/duct-dev/duct/internal/client"
)

// deployCmd is `duct deploy`.
type deployCmd struct {
	name, runtime, handler, entry, signature, invoke string
	memory                                           sizeFlag
	timeout, idleTimeout                             durationFlag
	concurrency, minInstances, maxInstances          int
	env                                              listFlag
	json, verbose                                    bool

	fs *flagSet // to tell flags given from defaults
}

func (c *deployCmd) info() cmdInfo {
	return cmdInfo{
		name:    "deploy",
		group:   "Functions",
		summary: "Build a folder or a file and deploy it as a new version",
		usage:   "[PATH] [flags]",
		help: `
Deploy packs PATH (a folder, or a single source file; default ".") and sends
it to the server, which detects the runtime, builds it, checks that it
starts and makes it serve at /fn/NAME. Deploying the same source and
settings again makes no new version.

The name is --name, else the name in the folder's duct.yaml, else the folder's
or file's name, lowercased, with other characters turned into '-'.
Flags override duct.yaml; --env adds to its env.

Progress goes to stderr; the version number and URL to stdout. When the
build fails, its log is printed and duct exits with status 1.`,
		examples: `
duct deploy                                  # the current folder
duct deploy ./thumbnail --memory 512Mi --timeout 2m
duct deploy hello.py --name greeter --env GREETING=hi
duct deploy ./worker --signature event --max-instances 5
duct deploy ./api -v                         # show the build output
duct deploy ./api --json | jq .version.number`,
		complete: "file",
	}
}

func (c *deployCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	fs.StringVar(&c.name, "name", "", "function `name` (default: duct.yaml's name, else the folder or file name)")
	fs.Var(choiceFlag{&c.runtime, runtimeNames()}, "runtime", "`runtime`: "+strings.Join(runtimeNames(), ", ")+" (default: detected from the files)")
	fs.StringVar(&c.handler, "handler", "", "handler function `name` (default Handle for Go, handler for Node.js and Python)")
	fs.StringVar(&c.entry, "entry", "", "source `file` holding the handler (Node.js, Python; default: detected)")
	fs.Var(choiceFlag{&c.signature, []string{"http", "event"}}, "signature", "handler `signature`: http or event (default http)")
	fs.Var(&c.memory, "memory", "memory `size` per instance, e.g. 256Mi")
	fs.Var(&c.timeout, "timeout", "`duration` an invocation may run, e.g. 30s")
	fs.IntVar(&c.concurrency, "concurrency", 0, "`N` requests in flight per instance (default 1; 80 for images)")
	fs.IntVar(&c.minInstances, "min-instances", 0, "`N` instances kept warm (default 0)")
	fs.IntVar(&c.maxInstances, "max-instances", 0, "at most `N` instances at once (default 100)")
	fs.Var(&c.idleTimeout, "idle-timeout", "idle `duration` before an instance stops, e.g. 5m")
	fs.Var(&c.env, "env", "set `KEY=VALUE` in the environment (repeatable; KEY alone passes on the local value)")
	fs.Var(choiceFlag{&c.invoke, []string{"public", "token"}}, "invoke", "who may invoke it: `mode` public or token (default public)")
	fs.BoolVar(&c.json, "json", false, "print the result as JSON")
	fs.BoolVar(&c.verbose, "verbose", false, "show the build output as it comes")
	fs.alias("v", "verbose")
	c.fs = fs
}

// spec returns the settings given as flags as a spec document.
func (c *deployCmd) spec(src *source, e *env) ([]byte, error) {
	d := &specDoc{Runtime: c.runtime, Signature: c.signature, Handler: c.handler, Entry: c.entry, Invoke: c.invoke}
	if c.memory.v != 0 {
		d.Memory = c.memory.v.String()
	}
	if c.timeout.v != 0 {
		d.Timeout = c.timeout.v.String()
	}
	if c.idleTimeout.v != 0 {
		d.IdleTimeout = c.idleTimeout.v.String()
	}
	given := func(flag string, v int) *int {
		if c.fs.set(flag) {
			return &v
		}
		return nil
	}
	d.Concurrency = given("concurrency", c.concurrency)
	d.MinInstances = given("min-instances", c.minInstances)
	d.MaxInstances = given("max-instances", c.maxInstances)
	if err := d.addEnv(src, c.env, e.getenv); err != nil {
		return nil, err
	}
	return d.encode(), nil
}

func (c *deployCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 1, "PATH"); err != nil {
		return err
	}
	path := "."
	if len(args) == 1 {
		path = args[0]
	}
	src, err := loadSource(path)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	name, err := src.name(c.name)
	if err != nil {
		return wrap("deploy", err)
	}
	spec, err := c.spec(src, e)
	if err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	p := &progress{w: e.stderr, steps: !c.json || c.verbose, verbose: c.verbose}
	res, err := deploySource(ctx, cl, src, name, spec, p)
	if err != nil {
		return fmt.Errorf("deploy %s: %w", name, trimOp(err, "deploy", name))
	}
	if c.json {
		return writeJSON(e.stdout, res)
	}
	fmt.Fprintln(e.stdout, resultLine(name, res))
	return nil
}

// deploySource packs src and deploys it, reporting through p. On a build
// failure it prints the build log.
func deploySource(ctx context.Context, cl *client.Client, src *source, name string, spec []byte, p *progress) (*api.DeployResult, error) {
	archive, err := src.pack()
	if err != nil {
		return nil, err
	}
	if p.steps {
		what := src.path
		if what == "" {
			what = src.dir
		}
		fmt.Fprintf(p.w, "%s  %-8s %s (%s) to %s\n", p.prefix, "upload", what, humanSize(int64(len(archive))), cl.BaseURL())
	}
	res, err := cl.Deploy(ctx, name, bytes.NewReader(archive), spec, p.event)
	if err != nil {
		p.buildLog(err)
		return nil, err
	}
	return res, nil
}

// resultLine says what a deploy made.
func resultLine(name string, res *api.DeployResult) string {
	v := res.Version
	how := fmt.Sprintf("%s, built in %s", v.Spec.Runtime, since(v.BuildDuration))
	if v.Cached {
		how = fmt.Sprintf("%s, nothing rebuilt", v.Spec.Runtime)
	}
	if res.Unchanged {
		return fmt.Sprintf("%s: unchanged, version %d serves at %s", name, v.Number, res.URL)
	}
	return fmt.Sprintf("%s: version %d serves at %s (%s)", name, v.Number, res.URL, how)
}

func runtimeNames() []string {
	out := make([]string, len(duct.Runtimes))
	for i, r := range duct.Runtimes {
		out[i] = string(r)
	}
	return out
}
