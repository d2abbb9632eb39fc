package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/duct-dev/duct"
)

// invocationsCmd is `duct invocations get`.
type invocationsCmd struct {
	json, wait bool
	timeout    time.Duration
}

func (c *invocationsCmd) info() cmdInfo {
	return cmdInfo{
		name:    "invocations",
		group:   "Functions",
		summary: "Show where an asynchronous invocation stands",
		usage:   "get ID [--wait] [flags]",
		help: `
Invocations reads the record of an asynchronous invocation (one made with
duct invoke --async, or with the header Prefer: respond-async): its status
(queued, running, succeeded or failed), its attempts, when it was
submitted, started and finished, the function's answer or the error, and
what became of its destination topic.

  get ID   show the invocation ID; with --wait, poll until it succeeds or
           fails

A failed invocation makes duct exit with status 1. Records are kept for
7 days after their last change.`,
		examples: `
duct invocations get 6fdcb8704c3b000000000000dd03
duct invocations get $(duct invoke resize --async --data @job.json) --wait
duct invocations get 6fdcb8704c3b000000000000dd03 --json | jq .result.status`,
		complete: "get",
	}
}

func (c *invocationsCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	fs.BoolVar(&c.wait, "wait", false, "poll until the invocation succeeds or fails")
	fs.DurationVar(&c.timeout, "timeout", 0, "with --wait, give up after this `duration`; 0 waits as long as it takes")
	jsonFlag(fs, &c.json)
}

func (c *invocationsCmd) run(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing subcommand: get")
	}
	sub, args := args[0], args[1:]
	if sub != "get" {
		return usageErrorf("unknown subcommand %q: want get", sub)
	}
	if err := wantArgs(args, 1, 1, "invocation ID"); err != nil {
		return err
	}
	if c.timeout != 0 && !c.wait {
		return usageErrorf("--timeout applies to --wait")
	}
	id := args[0]
	cl, err := e.client()
	if err != nil {
		return err
	}
	var inv *duct.Invocation
	if c.wait {
		if c.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.timeout)
			defer cancel()
		}
		inv, err = cl.WaitInvocation(ctx, id)
		if err != nil && inv == nil {
			return fmt.Errorf("invocations get %s: %w", id, err)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "duct: invocations get %s: still %s after %s\n", id, inv.Status, c.timeout)
		}
	} else if inv, err = cl.Invocation(ctx, id); err != nil {
		return fmt.Errorf("invocations get %s: %w", id, err)
	}
	if c.json {
		err = writeJSON(e.stdout, inv)
	} else {
		err = showInvocation(e.stdout, inv)
	}
	if err != nil {
		return err
	}
	if inv.Status == duct.InvocationFailed || (c.wait && !inv.Status.Final()) {
		return &exitError{exitFailure}
	}
	return nil
}

// showInvocation writes an invocation record for people.
func showInvocation(w io.Writer, inv *duct.Invocation) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	field("ID", inv.ID)
	field("Function", inv.Function)
	field("Status", string(inv.Status))
	attempts := strconv.Itoa(inv.Attempts)
	if inv.MaxAttempts > 0 {
		attempts += " of " + strconv.Itoa(inv.MaxAttempts)
	}
	if inv.Throttled > 0 {
		attempts += fmt.Sprintf(" (held back %d times: no instance free)", inv.Throttled)
	}
	field("Attempts", attempts)
	req := inv.Request.Method + " " + inv.Request.Path
	if inv.Request.Query != "" {
		req += "?" + inv.Request.Query
	}
	field("Request", req)
	field("Submitted", timestamp(inv.SubmittedAt))
	field("Started", timestamp(inv.StartedAt))
	field("Finished", timestamp(inv.FinishedAt))
	field("Next attempt", timestamp(inv.NextAttemptAt))
	field("Error", inv.Error)
	if d := inv.Destination; d != nil {
		s := fmt.Sprintf("on %s to topic %s: %s", d.Condition, d.Topic, d.State)
		if d.MessageID != "" {
			s += " (message " + d.MessageID + ")"
		}
		if d.Error != "" {
			s += ": " + d.Error
		}
		field("Destination", s)
	}
	for _, a := range inv.History {
		s := fmt.Sprintf("%s, %s", a.Outcome, since(a.Duration))
		if a.Status != 0 {
			s = strconv.Itoa(a.Status) + " " + s
		}
		if a.Error != "" {
			s += ": " + a.Error
		}
		field("Attempt "+strconv.Itoa(a.Number), s)
	}
	if r := inv.Result; r != nil {
		s := fmt.Sprintf("%d, %s", r.Status, humanSize(r.BodySize))
		if r.Truncated {
			s += " (first " + humanSize(int64(len(r.Body))) + " kept)"
		}
		field("Result", s)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r := inv.Result; r != nil && r.Body != "" {
		body := r.Body
		if r.BodyEncoding == "base64" {
			if b, err := base64.StdEncoding.DecodeString(body); err == nil {
				body = fmt.Sprintf("(%d bytes of binary data; --json shows them in base64)", len(b))
			}
		}
		fmt.Fprintf(w, "\n%s", body)
		if !strings.HasSuffix(body, "\n") {
			fmt.Fprintln(w)
		}
	}
	return nil
}
