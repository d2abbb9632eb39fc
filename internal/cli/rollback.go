package cli

import (
	"context"
	"fmt"
)

// rollbackCmd is `duct rollback`.
type rollbackCmd struct {
	to   int
	json bool
}

func (c *rollbackCmd) info() cmdInfo {
	return cmdInfo{
		name:    "rollback",
		group:   "Functions",
		summary: "Serve an earlier version of a function",
		usage:   "NAME [--to N]",
		help: `
Rollback makes the function NAME serve version N, or without --to the
version before the one serving. Nothing is rebuilt: versions are immutable.
A later deploy makes a new version, which serves.`,
		examples: `
duct rollback hello           # the version before the one serving
duct rollback hello --to 3
duct versions hello           # see which serves`,
		complete: "function",
	}
}

func (c *rollbackCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	fs.IntVar(&c.to, "to", 0, "version `N` to serve (default: the one before the version serving)")
	fs.BoolVar(&c.json, "json", false, "print the version now serving as JSON")
}

func (c *rollbackCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "function NAME"); err != nil {
		return err
	}
	if c.to < 0 {
		return usageErrorf("--to %d: want a version number", c.to)
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	v, err := cl.Rollback(ctx, args[0], c.to)
	if err != nil {
		return fmt.Errorf("rollback %s: %w", args[0], trimOp(err, "rollback", args[0]))
	}
	if c.json {
		return writeJSON(e.stdout, v)
	}
	fmt.Fprintf(e.stdout, "%s: version %d serves\n", args[0], v.Number)
	return nil
}
