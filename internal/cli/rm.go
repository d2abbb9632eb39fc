package cli

import (
	"context"
	"fmt"
)

// rmCmd is `duct rm`.
type rmCmd struct{}

func (c *rmCmd) info() cmdInfo {
	return cmdInfo{
		name:    "rm",
		group:   "Functions",
		summary: "Remove functions",
		usage:   "NAME...",
		help: `
Rm removes each function named: it stops serving at once, and its versions
and logs are deleted.`,
		examples: `
duct rm hello
duct rm $(duct ls -q)         # everything`,
		complete: "function",
	}
}

func (c *rmCmd) define(fs *flagSet, e *env) { serverFlag(fs, e) }

func (c *rmCmd) run(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing function NAME")
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	failed := 0
	for _, name := range args {
		if err := cl.Delete(ctx, name); err != nil {
			if len(args) == 1 {
				return fmt.Errorf("rm %s: %w", name, trimOp(err, "rm", name))
			}
			fmt.Fprintf(e.stderr, "duct: rm %s: %v\n", name, trimOp(err, "rm", name))
			failed++
			continue
		}
		fmt.Fprintf(e.stdout, "%s: removed\n", name)
	}
	if failed > 0 {
		return &exitError{exitFailure}
	}
	return nil
}
