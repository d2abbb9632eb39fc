package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// lsCmd is `duct ls`.
type lsCmd struct{ json, quiet bool }

func (c *lsCmd) info() cmdInfo {
	return cmdInfo{
		name:    "ls",
		group:   "Functions",
		summary: "List functions",
		help: `
Ls lists the server's functions: the version serving, its runtime, the live
instances, when it last changed and its URL.`,
		examples: `
duct ls
duct ls -q                   # names only
duct ls --json | jq -r '.[].url'`,
	}
}

func (c *lsCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	jsonFlag(fs, &c.json)
	fs.BoolVar(&c.quiet, "quiet", false, "print only the names")
	fs.alias("q", "quiet")
}

func (c *lsCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 0, ""); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	fns, err := cl.Functions(ctx)
	if err != nil {
		return fmt.Errorf("ls: %w", err)
	}
	switch {
	case c.json:
		if fns == nil {
			return writeJSON(e.stdout, []any{})
		}
		return writeJSON(e.stdout, fns)
	case c.quiet:
		for _, f := range fns {
			fmt.Fprintln(e.stdout, f.Name)
		}
		return nil
	case len(fns) == 0:
		fmt.Fprintln(e.stderr, "No functions yet. Deploy one with 'duct deploy PATH'.")
		return nil
	}
	now := time.Now()
	t := newTable(e.stdout, "NAME", "VERSION", "RUNTIME", "INSTANCES", "UPDATED", "URL")
	for _, f := range fns {
		version, runtime := "", ""
		if f.Active != nil {
			version, runtime = strconv.Itoa(f.Active.Number), string(f.Active.Spec.Runtime)
		}
		t.row(f.Name, version, runtime, strconv.Itoa(len(f.Instances)), age(f.UpdatedAt, now), f.URL)
	}
	return t.flush()
}
