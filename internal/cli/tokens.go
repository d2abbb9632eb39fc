package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/duct-dev/duct"
)

// tokensCmd is `duct tokens create|ls|rm`.
type tokensCmd struct {
	role string
	json bool
}

func (c *tokensCmd) info() cmdInfo {
	return cmdInfo{
		name:    "tokens",
		group:   "Access",
		summary: "Create, list and revoke API tokens",
		usage:   "create NAME --role ROLE | ls | rm ID... [flags]",
		help: `
Tokens manages the server's API tokens (an admin token is needed).

  create NAME --role ROLE   issue a token and print it: it is shown only
                            this once (the server keeps only its SHA-256)
  ls                        list tokens: id, name, role, when and by whom
                            they were made
  rm ID...                  revoke tokens: every server refuses them
                            within moments

Roles:
  admin    everything, including tokens and secrets
  deploy   deploy, roll back and remove functions; manage topics and
           subscriptions; read; list secret names; invoke; publish and pull
  invoke   invoke functions whose invoke mode is token; publish, pull and
           seek messages; nothing else
  read     list and describe functions, versions, logs, topics,
           subscriptions and status

The token goes alone to stdout, so that scripts can capture it; what it is
goes to stderr.`,
		examples: `
duct tokens create ci --role deploy
TOKEN=$(duct tokens create webhook-caller --role invoke)
duct tokens ls
duct tokens rm 3f9a0c12b7de`,
		complete: "create ls rm",
	}
}

func (c *tokensCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	fs.Var(choiceFlag{&c.role, roleList()}, "role", "the new token's `role`: admin, deploy, invoke or read")
	jsonFlag(fs, &c.json)
}

func (c *tokensCmd) run(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing subcommand: create, ls or rm")
	}
	sub, args := args[0], args[1:]
	if c.role != "" && sub != "create" {
		return usageErrorf("--role applies to tokens create")
	}
	switch sub {
	case "create":
		return c.create(ctx, e, args)
	case "ls", "list":
		return c.list(ctx, e, args)
	case "rm", "revoke":
		return c.revoke(ctx, e, args)
	}
	return usageErrorf("unknown subcommand %q: want create, ls or rm", sub)
}

func (c *tokensCmd) create(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "token NAME"); err != nil {
		return err
	}
	if c.role == "" {
		return usageErrorf("missing --role: admin, deploy, invoke or read")
	}
	if err := duct.ValidateTokenName(args[0]); err != nil {
		return usageErrorf("%v", err)
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	nt, err := cl.CreateToken(ctx, args[0], duct.Role(c.role))
	if err != nil {
		return fmt.Errorf("tokens create: %w", err)
	}
	if c.json {
		return writeJSON(e.stdout, nt)
	}
	fmt.Fprintf(e.stderr, "Created token %s %q (role %s). It is shown only this once: store it now.\n", nt.ID, nt.Name, nt.Role)
	fmt.Fprintln(e.stdout, nt.Token)
	return nil
}

func (c *tokensCmd) list(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 0, ""); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	ts, err := cl.Tokens(ctx)
	if err != nil {
		return fmt.Errorf("tokens ls: %w", err)
	}
	if c.json {
		if ts == nil {
			ts = []duct.TokenInfo{}
		}
		return writeJSON(e.stdout, ts)
	}
	if len(ts) == 0 {
		fmt.Fprintln(e.stderr, "No tokens stored.")
		return nil
	}
	now := time.Now()
	t := newTable(e.stdout, "ID", "NAME", "ROLE", "CREATED", "BY")
	for _, tk := range ts {
		t.row(tk.ID, tk.Name, string(tk.Role), age(tk.CreatedAt, now), tk.CreatedBy)
	}
	return t.flush()
}

func (c *tokensCmd) revoke(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing token ID (see duct tokens ls)")
	}
	if c.json {
		return usageErrorf("--json applies to tokens create and ls")
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	failed := 0
	for _, id := range args {
		if err := cl.RevokeToken(ctx, id); err != nil {
			if len(args) == 1 {
				return fmt.Errorf("tokens rm %s: %w", id, err)
			}
			fmt.Fprintf(e.stderr, "duct: tokens rm %s: %v\n", id, err)
			failed++
			continue
		}
		fmt.Fprintf(e.stdout, "%s: revoked\n", id)
	}
	if failed > 0 {
		return &exitError{exitFailure}
	}
	return nil
}
