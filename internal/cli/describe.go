package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/duct-dev/duct"
)

// describeCmd is `duct describe`.
type describeCmd struct{ json bool }

func (c *describeCmd) info() cmdInfo {
	return cmdInfo{
		name:    "describe",
		group:   "Functions",
		summary: "Show a function's settings, version and instances",
		usage:   "NAME [flags]",
		help: `
Describe shows the function NAME: its URL, the version serving and the
settings it was deployed with, what was built, how the server sandboxes its
instances, and its live instances.`,
		examples: `
duct describe hello
duct describe hello --json | jq .active.spec`,
		complete: "function",
	}
}

func (c *describeCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	jsonFlag(fs, &c.json)
}

func (c *describeCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "function NAME"); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	fi, err := cl.Function(ctx, args[0])
	if err != nil {
		return fmt.Errorf("describe %s: %w", args[0], trimOp(err, "describe", args[0]))
	}
	if c.json {
		return writeJSON(e.stdout, fi)
	}
	// The server's sandbox says how the instances are isolated; a token
	// that may read the function may read the status too.
	sandbox := ""
	if st, err := cl.Status(ctx); err == nil {
		sandbox = st.Sandbox
	}
	return describe(e.stdout, fi, sandbox, time.Now())
}

// describe writes a function for people; sandbox is the server's.
func describe(w io.Writer, fi *duct.FunctionInfo, sandbox string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	field := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", k, v)
	}
	field("Name", fi.Name)
	field("URL", fi.URL)
	v := fi.Active
	if v == nil {
		field("Version", fmt.Sprintf("none serving (latest %d)", fi.Latest))
	} else {
		s := v.Spec
		field("Version", fmt.Sprintf("%d serving (latest %d)", v.Number, fi.Latest))
		field("Runtime", string(s.Runtime))
		field("Signature", string(s.Signature))
		handler := s.Handler
		if len(s.Command) > 0 {
			handler = strings.Join(s.Command, " ")
		}
		if entry := v.Run.Entry; entry != "" {
			handler += " in " + entry
		}
		field("Handler", handler)
		field("Memory", s.Memory.String())
		field("Timeout", s.Timeout.String())
		field("Concurrency", strconv.Itoa(s.Concurrency))
		field("Scaling", fmt.Sprintf("%d to %d instances, idle timeout %s", s.MinInstances, s.MaxInstances, s.IdleTimeout))
		field("Invoke", string(s.Invoke))
		var env []string
		for _, k := range s.EnvKeys() {
			env = append(env, k+"="+s.Env[k])
		}
		field("Env", strings.Join(env, " "))
		field("Secrets", strings.Join(s.Secrets, " "))
		field("Triggers", triggers(s.Triggers))
		field("Source", shortDigest(v.SourceDigest))
		built := fmt.Sprintf("%s, %s, built in %s", shortDigest(v.ArtifactDigest), humanSize(v.ArtifactSize), since(v.BuildDuration))
		if v.Cached {
			built = fmt.Sprintf("%s, %s, reused an identical build", shortDigest(v.ArtifactDigest), humanSize(v.ArtifactSize))
		}
		field("Artifact", built)
		field("Deployed", fmt.Sprintf("%s (%s ago)", timestamp(v.CreatedAt), age(v.CreatedAt, now)))
	}
	field("Created", timestamp(fi.CreatedAt))
	field("Sandbox", sandbox)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(fi.Instances) == 0 {
		fmt.Fprintln(w, "\nNo instances running.")
		return nil
	}
	fmt.Fprintln(w)
	insts := append([]duct.InstanceInfo(nil), fi.Instances...)
	sort.Slice(insts, func(i, j int) bool { return insts[i].StartedAt.Before(insts[j].StartedAt) })
	t := newTable(w, "INSTANCE", "VERSION", "STATE", "IN FLIGHT", "SERVED", "MAX MEMORY", "AGE", "PID")
	for _, in := range insts {
		mem := ""
		if in.MaxMemory > 0 {
			mem = humanSize(in.MaxMemory)
		}
		pid := ""
		if in.PID > 0 {
			pid = strconv.Itoa(in.PID)
		}
		t.row(in.ID, strconv.Itoa(in.Version), in.State, strconv.Itoa(in.InFlight),
			strconv.FormatInt(in.Served, 10), mem, age(in.StartedAt, now), pid)
	}
	return t.flush()
}

// triggers writes a function's triggers on one line.
func triggers(ts []duct.Trigger) string {
	var out []string
	for _, t := range ts {
		switch {
		case t.HTTP != nil:
			s := "http " + t.HTTP.Path
			if len(t.HTTP.Methods) > 0 {
				s += " (" + strings.Join(t.HTTP.Methods, ",") + ")"
			}
			out = append(out, s)
		case t.Topic != nil:
			out = append(out, "topic "+t.Topic.Name)
		case t.Schedule != nil:
			s := "schedule " + strconv.Quote(t.Schedule.Cron)
			if t.Schedule.Timezone != "" {
				s += " " + t.Schedule.Timezone
			}
			out = append(out, s)
		case t.Bucket != nil:
			out = append(out, "bucket "+t.Bucket.Name)
		case t.KV != nil:
			out = append(out, "kv "+t.KV.Bucket+" "+t.KV.Key)
		case t.Event != nil:
			out = append(out, "event "+t.Event.Type)
		}
	}
	return strings.Join(out, "; ")
}
