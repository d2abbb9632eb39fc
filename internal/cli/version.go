package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/duct-dev/duct/internal/daemon"
)

// versionCmd is `duct version`.
type versionCmd struct{ json bool }

func (c *versionCmd) info() cmdInfo {
	return cmdInfo{
		name:    "version",
		group:   "Other",
		summary: "Print duct's version, and the server's",
		help: `
Version prints this program's version and, if the server answers, the
server's version and the runtimes it can build.`,
		examples: `
duct version
duct version --server http://duct.internal:8080 --json`,
	}
}

func (c *versionCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	fs.BoolVar(&c.json, "json", false, "print the versions as JSON")
}

func (c *versionCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 0, ""); err != nil {
		return err
	}
	out := struct {
		Client string `json:"client"`
		Go     string `json:"go"`
		Server any    `json:"server,omitempty"`
		Error  string `json:"serverError,omitempty"`
	}{Client: daemon.Version, Go: runtime.Version()}
	cl, err := e.client()
	if err != nil {
		return err
	}
	st, err := cl.Status(ctx)
	if err != nil {
		out.Error = err.Error()
	} else {
		out.Server = st
	}
	if c.json {
		return writeJSON(e.stdout, out)
	}
	fmt.Fprintf(e.stdout, "duct %s (%s)\n", out.Client, out.Go)
	if st != nil {
		fmt.Fprintf(e.stdout, "server %s at %s, runtimes: %v\n", st.Version, cl.BaseURL(), st.Runtimes)
	} else {
		fmt.Fprintf(e.stdout, "server at %s: %v\n", cl.BaseURL(), err)
	}
	return nil
}
