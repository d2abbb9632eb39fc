package cli

import "context"

// helpCmd is `duct help`.
type helpCmd struct{}

func (c *helpCmd) info() cmdInfo {
	return cmdInfo{
		name:    "help",
		group:   "Other",
		summary: "Show help for duct or one of its commands",
		usage:   "[COMMAND]",
		help:    `Help lists duct's commands, or explains one with its flags and examples.`,
		examples: `
duct help
duct help deploy`,
		complete: "command",
	}
}

func (c *helpCmd) define(fs *flagSet, e *env) {}

func (c *helpCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 1, "COMMAND"); err != nil {
		return err
	}
	if len(args) == 0 {
		printOverview(e.stdout)
		return nil
	}
	cmd := lookup(args[0])
	if cmd == nil {
		return usageErrorf("unknown command %q%s", args[0], suggestCommand(args[0]))
	}
	fs := newFlagSet("duct " + args[0])
	cmd.define(fs, e)
	printHelp(e.stdout, cmd, fs)
	return nil
}
