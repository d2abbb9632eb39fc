package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/duct-dev/duct"
)

// secretsCmd is `duct secrets set|ls|rm`.
type secretsCmd struct {
	value, fromFile string
	force, json     bool
}

func (c *secretsCmd) info() cmdInfo {
	return cmdInfo{
		name:    "secrets",
		group:   "Access",
		summary: "Set, list and remove the secrets functions are given",
		usage:   "set NAME [--value V | --from-file F] | ls | rm NAME... [--force] [flags]",
		help: `
Secrets manages values that functions receive without them appearing in
duct.yaml, the API's answers or the logs. The server encrypts each value
(AES-256-GCM) before storing it.

  set NAME   set a secret's value (admin): from --value, --from-file, or
             stdin (a prompt when stdin is a terminal; one trailing newline
             is dropped); at most 32 KiB. Functions using the secret start
             their new instances with the new value
  ls         list secret names, when they changed, and the functions using
             them (admin, deploy); never values
  rm NAME    delete a secret (admin); refused while a deployed function
             lists it, unless --force (its new instances then go without)

A function receives the secrets its duct.yaml lists (secrets: [NAME]) as
environment variables of those names and as files /run/secrets/NAME. Names
follow the rules of environment variables. --value leaves the value in your
shell history: prefer stdin or --from-file.`,
		examples: `
duct secrets set SLACK_SIGNING_SECRET          # paste the value when asked
duct secrets set DB_PASSWORD --from-file ./db-password.txt
pass show slack/signing | duct secrets set SLACK_SIGNING_SECRET
duct secrets ls
duct secrets rm OLD_API_KEY --force`,
		complete: "set ls rm",
	}
}

func (c *secretsCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	fs.StringVar(&c.value, "value", "", "the secret's `value` (set; visible in shell history)")
	fs.StringVar(&c.fromFile, "from-file", "", "read the value from this `file` (set), byte for byte")
	fs.BoolVar(&c.force, "force", false, "delete even if functions use the secret (rm)")
	jsonFlag(fs, &c.json)
}

func (c *secretsCmd) run(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing subcommand: set, ls or rm")
	}
	sub, args := args[0], args[1:]
	if (c.value != "" || c.fromFile != "") && sub != "set" {
		return usageErrorf("--value and --from-file apply to secrets set")
	}
	if c.force && sub != "rm" {
		return usageErrorf("--force applies to secrets rm")
	}
	switch sub {
	case "set":
		return c.set(ctx, e, args)
	case "ls", "list":
		return c.list(ctx, e, args)
	case "rm", "delete":
		return c.remove(ctx, e, args)
	}
	return usageErrorf("unknown subcommand %q: want set, ls or rm", sub)
}

func (c *secretsCmd) set(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "secret NAME"); err != nil {
		return err
	}
	name := args[0]
	if err := duct.ValidateSecretName(name); err != nil {
		return usageErrorf("%v", err)
	}
	value, err := c.readValue(e, name)
	if err != nil {
		return err
	}
	if err := duct.ValidateSecretValue(value); err != nil {
		return usageErrorf("%v", err)
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	info, err := cl.SetSecret(ctx, name, value)
	if err != nil {
		return fmt.Errorf("secrets set %s: %w", name, err)
	}
	if c.json {
		return writeJSON(e.stdout, info)
	}
	msg := name + ": set"
	if len(info.UsedBy) > 0 {
		msg += "; new instances of " + strings.Join(info.UsedBy, ", ") + " get the new value"
	}
	fmt.Fprintln(e.stdout, msg)
	return nil
}

// readValue reads the value from --value, --from-file or stdin.
func (c *secretsCmd) readValue(e *env, name string) ([]byte, error) {
	switch {
	case c.value != "" && c.fromFile != "":
		return nil, usageErrorf("give the value with --value or --from-file, not both")
	case c.value != "":
		return []byte(c.value), nil
	case c.fromFile != "":
		b, err := os.ReadFile(c.fromFile)
		if err != nil {
			return nil, fmt.Errorf("secrets set %s: %w", name, err)
		}
		return b, nil
	}
	if isTerminal(e.stdin) {
		fmt.Fprintf(e.stderr, "Value for %s (Enter, then Ctrl-D to end): ", name)
	}
	b, err := io.ReadAll(io.LimitReader(e.stdin, duct.MaxSecretValue+2))
	if err != nil {
		return nil, fmt.Errorf("secrets set %s: reading stdin: %w", name, err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	return []byte(s), nil
}

func (c *secretsCmd) list(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 0, ""); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	ss, err := cl.Secrets(ctx)
	if err != nil {
		return fmt.Errorf("secrets ls: %w", err)
	}
	if c.json {
		if ss == nil {
			ss = []duct.SecretInfo{}
		}
		return writeJSON(e.stdout, ss)
	}
	if len(ss) == 0 {
		fmt.Fprintln(e.stderr, "No secrets yet. Set one with 'duct secrets set NAME'.")
		return nil
	}
	now := time.Now()
	t := newTable(e.stdout, "NAME", "UPDATED", "CREATED", "USED BY")
	for _, s := range ss {
		t.row(s.Name, age(s.UpdatedAt, now), age(s.CreatedAt, now), strings.Join(s.UsedBy, ", "))
	}
	return t.flush()
}

func (c *secretsCmd) remove(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing secret NAME")
	}
	if c.json {
		return usageErrorf("--json applies to secrets set and ls")
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	failed := 0
	for _, name := range args {
		err := cl.DeleteSecret(ctx, name, c.force)
		if err != nil {
			if errors.Is(err, duct.ErrConflict) {
				err = fmt.Errorf("%w\n(use --force to delete it anyway)", err)
			}
			if len(args) == 1 {
				return fmt.Errorf("secrets rm %s: %w", name, err)
			}
			fmt.Fprintf(e.stderr, "duct: secrets rm %s: %v\n", name, err)
			failed++
			continue
		}
		fmt.Fprintf(e.stdout, "%s: deleted\n", name)
	}
	if failed > 0 {
		return &exitError{exitFailure}
	}
	return nil
}
