package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/client"
)

// logsCmd is `duct logs`.
type logsCmd struct {
	follow     bool
	since      string
	tail       int
	invocation string
	json       bool
}

func (c *logsCmd) info() cmdInfo {
	return cmdInfo{
		name:    "logs",
		group:   "Functions",
		summary: "Print a function's output and invocation reports",
		usage:   "NAME [flags]",
		help: `
Logs prints what the function NAME wrote to stdout and stderr, one line
each, tagged with the time, the version, and the invocation that wrote it;
what Duct says about its instances; and a REPORT line per invocation with
its duration, billed duration, memory and cold-start time:

  2026-11-30T11:00:00.000Z hello[3] 9f2c01ab: handling /
  2026-11-30T11:00:00.004Z hello[3] 9f2c01ab: REPORT RequestId: … Duration: 1.23 ms …

The short id is the end of the invocation's id; --invocation takes either.
Without --since, logs start an hour back.`,
		examples: `
duct logs hello
duct logs hello -f                      # keep printing new lines
duct logs hello --since 10m --tail 50
duct logs hello --invocation 9f2c01ab
duct logs hello --json | jq -r 'select(.report) | .report.duration'`,
		complete: "function",
	}
}

func (c *logsCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	fs.BoolVar(&c.follow, "follow", false, "keep printing new entries until interrupted")
	fs.alias("f", "follow")
	fs.StringVar(&c.since, "since", "", "start this far back (a `duration` such as 10m) or at an RFC 3339 time")
	fs.IntVar(&c.tail, "tail", 0, "print only the last `N` entries (then follow, with -f)")
	fs.StringVar(&c.invocation, "invocation", "", "only the entries of the invocation with this `ID` (or its end)")
	fs.BoolVar(&c.json, "json", false, "print entries as JSON, one per line")
}

func (c *logsCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "function NAME"); err != nil {
		return err
	}
	if c.tail < 0 {
		return usageErrorf("--tail %d: want a count", c.tail)
	}
	if c.since != "" {
		if _, err := duct.ParseDuration(c.since); err != nil {
			if _, err := time.Parse(time.RFC3339, c.since); err != nil {
				return usageErrorf("--since %q: want a duration such as 10m or an RFC 3339 time", c.since)
			}
		}
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	q := client.LogQuery{Since: c.since, Tail: c.tail, Invocation: c.invocation, Follow: c.follow}
	// A shortened invocation id is matched here: the server matches whole
	// ids only.
	suffix := ""
	if len(c.invocation) < fullIDLen {
		q.Invocation, suffix = "", strings.ToLower(c.invocation)
	}
	enc := json.NewEncoder(e.stdout)
	err = cl.Logs(ctx, args[0], q, func(en duct.LogEntry) error {
		if suffix != "" && !strings.HasSuffix(en.Invocation, suffix) {
			return nil
		}
		if c.json {
			return enc.Encode(en)
		}
		_, err := io.WriteString(e.stdout, formatEntry(en)+"\n")
		return err
	})
	if err != nil {
		return fmt.Errorf("logs %s: %w", args[0], trimOp(err, "logs", args[0]))
	}
	return nil
}

// fullIDLen is the length of an invocation id; shortID is how much of
// its end log lines show.
const (
	fullIDLen = 28
	shortID   = 8
)

// formatEntry writes one log entry as a line:
// "TIME FUNCTION[VERSION] INVOCATION: MESSAGE".
func formatEntry(e duct.LogEntry) string {
	var b strings.Builder
	b.WriteString(timestamp(e.Time))
	b.WriteByte(' ')
	b.WriteString(e.Function)
	if e.Version > 0 {
		fmt.Fprintf(&b, "[%d]", e.Version)
	}
	if inv := e.Invocation; inv != "" {
		b.WriteByte(' ')
		b.WriteString(inv[max(0, len(inv)-shortID):])
	}
	b.WriteString(": ")
	switch {
	case e.Report != nil:
		b.WriteString(formatReport(e.Report))
	case e.Stream == duct.LogPlatform:
		b.WriteString("[duct] " + e.Message)
	default:
		b.WriteString(e.Message)
	}
	return b.String()
}

// formatReport writes an invocation report as Lambda does.
func formatReport(r *duct.Report) string {
	s := fmt.Sprintf("REPORT RequestId: %s Duration: %s Billed Duration: %d ms Memory Size: %d MB Max Memory Used: %d MB",
		r.Invocation, ms(r.Duration), r.BilledDuration.Milliseconds(), mib(r.MemorySize), mib(r.MaxMemoryUsed))
	if r.InitDuration > 0 {
		s += " Init Duration: " + ms(r.InitDuration)
	}
	if r.Outcome != "" && r.Outcome != duct.OutcomeSuccess {
		s += " Status: " + string(r.Outcome)
		if r.Error != "" {
			s += " Error: " + r.Error
		}
	}
	return s
}

// mib is a size in whole MiB, rounded up (what Lambda calls MB).
func mib(b duct.ByteSize) int64 {
	return (int64(b) + int64(duct.MiB) - 1) / int64(duct.MiB)
}
