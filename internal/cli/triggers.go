package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/duct-dev/duct"
)

// triggersCmd is `duct triggers ls|add|rm`.
type triggersCmd struct {
	fs                 *flagSet
	schedule, timezone string
	topic, filter      string
	http, methods      string
	event, source      string
	json               bool
}

func (c *triggersCmd) info() cmdInfo {
	return cmdInfo{
		name:    "triggers",
		group:   "Functions",
		summary: "List, add and remove a function's triggers",
		usage:   "ls NAME | add NAME (--schedule CRON | --topic T | --http PATH | --event TYPE) | rm NAME INDEX|ID [flags]",
		help: `
Triggers lists and changes what makes a function run besides direct calls:

  ls NAME    the triggers of the serving version, with their ids, a
             schedule's next tick and a topic trigger's subscription
  add NAME   add one trigger: --schedule CRON [--timezone TZ],
             --topic TOPIC [--filter EXPR], --http PATH [--methods POST,PUT]
             or --event TYPE [--source SOURCE]
  rm NAME X  remove the trigger at index X, or with id X, as ls shows them

Triggers are part of a function's spec, as in duct.yaml: add and rm make a
new version with the serving version's artifact and the changed list, and
serve it; nothing is rebuilt, and 'duct rollback' undoes the change. The
next 'duct deploy' sets the triggers its duct.yaml declares, so put the
ones you keep there.

A cron spec has 5 fields (minute hour day-of-month month day-of-week), or
6 with seconds first, or is @hourly, @daily, @weekly, @monthly, @yearly or
@every DURATION; it runs in UTC unless --timezone names an IANA zone. A
topic that does not exist is created. An HTTP path is served on the
server's own address (a path ending in /* serves everything under it).
See docs/triggers.md for what each trigger sends the function.`,
		examples: `
duct triggers ls report
duct triggers add report --schedule "0 7 * * MON-FRI" --timezone Europe/Paris
duct triggers add thumbnail --topic uploads --filter 'attributes.kind = "image"'
duct triggers add slack --http /hooks/slack --methods POST
duct triggers add welcome --event com.example.user.created
duct triggers rm report 0
duct triggers rm report schedule-1f0c9a2b`,
		complete: "ls add rm",
	}
}

func (c *triggersCmd) define(fs *flagSet, e *env) {
	c.fs = fs
	serverFlag(fs, e)
	fs.StringVar(&c.schedule, "schedule", "", "add a schedule: a cron `spec`")
	fs.StringVar(&c.timezone, "timezone", "", "the schedule's time `zone` (IANA, like Europe/Paris); default UTC")
	fs.StringVar(&c.topic, "topic", "", "add a topic trigger on this `topic`")
	fs.StringVar(&c.filter, "filter", "", "the topic trigger's attribute `filter` (Pub/Sub syntax)")
	fs.StringVar(&c.http, "http", "", "add an HTTP route on this `path`")
	fs.StringVar(&c.methods, "methods", "", "the HTTP route's `methods`, comma-separated; default any")
	fs.StringVar(&c.event, "event", "", "add an event trigger for CloudEvents of this `type`")
	fs.StringVar(&c.source, "source", "", "the event trigger's `source` (a trailing * matches a prefix); default any")
	jsonFlag(fs, &c.json)
}

func (c *triggersCmd) run(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing subcommand: ls, add or rm")
	}
	sub, args := args[0], args[1:]
	if sub != "add" {
		for _, f := range []string{"schedule", "timezone", "topic", "filter", "http", "methods", "event", "source"} {
			if c.fs.set(f) {
				return usageErrorf("--%s applies to triggers add", f)
			}
		}
	}
	switch sub {
	case "ls", "list":
		return c.list(ctx, e, args)
	case "add":
		return c.add(ctx, e, args)
	case "rm", "remove", "delete":
		return c.remove(ctx, e, args)
	}
	return usageErrorf("unknown subcommand %q: want ls, add or rm", sub)
}

func (c *triggersCmd) list(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "function NAME"); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	ft, err := cl.Triggers(ctx, args[0])
	if err != nil {
		return fmt.Errorf("triggers ls %s: %w", args[0], err)
	}
	if c.json {
		return writeJSON(e.stdout, ft)
	}
	if len(ft.Triggers) == 0 {
		fmt.Fprintf(e.stderr, "%s has no triggers (version %d). Add one with 'duct triggers add %s --schedule ...' or in duct.yaml.\n",
			args[0], ft.Version, args[0])
		return nil
	}
	t := newTable(e.stdout, "INDEX", "ID", "TRIGGER", "NOTES")
	for _, ti := range ft.Triggers {
		t.row(strconv.Itoa(ti.Index), ti.ID, describeTrigger(ti.Trigger), triggerNotes(ti, cl.BaseURL(), time.Now()))
	}
	return t.flush()
}

// describeTrigger writes a trigger on one line, as a command would add it.
func describeTrigger(t duct.Trigger) string {
	switch {
	case t.Schedule != nil:
		s := "schedule " + strconv.Quote(t.Schedule.Cron)
		if t.Schedule.Timezone != "" {
			s += " in " + t.Schedule.Timezone
		}
		return s
	case t.Topic != nil:
		s := "topic " + t.Topic.Name
		if t.Topic.Filter != "" {
			s += " where " + t.Topic.Filter
		}
		return s
	case t.HTTP != nil:
		m := "ANY"
		if len(t.HTTP.Methods) > 0 {
			m = strings.Join(t.HTTP.Methods, ",")
		}
		return "http " + m + " " + t.HTTP.Path
	case t.Event != nil:
		s := "event " + t.Event.Type
		if t.Event.Source != "" {
			s += " from " + t.Event.Source
		}
		return s
	case t.Bucket != nil:
		return "bucket " + t.Bucket.Name
	case t.KV != nil:
		return "kv " + t.KV.Bucket + " " + t.KV.Key
	}
	return "?"
}

func triggerNotes(ti duct.TriggerInfo, base string, now time.Time) string {
	var notes []string
	if ti.Next != nil {
		notes = append(notes, "next "+ti.Next.Format("2006-01-02 15:04:05 MST")+" (in "+ti.Next.Sub(now).Round(time.Second).String()+")")
	}
	if ti.LastTick != nil {
		last := "last " + ti.LastTick.Format("2006-01-02 15:04:05 MST")
		if ti.LastInvocation != "" {
			last += " (invocation " + ti.LastInvocation + ")"
		}
		notes = append(notes, last)
	}
	if ti.Subscription != "" {
		notes = append(notes, "subscription "+ti.Subscription)
	}
	if ti.HTTP != nil {
		notes = append(notes, base+strings.TrimSuffix(ti.HTTP.Path, "*"))
	}
	if !ti.Active {
		notes = append(notes, "recorded only: this server does not fire it")
	}
	return strings.Join(notes, "; ")
}

// trigger builds the trigger the add flags describe.
func (c *triggersCmd) trigger() (duct.Trigger, error) {
	var t duct.Trigger
	kinds := 0
	for _, f := range []string{"schedule", "topic", "http", "event"} {
		if c.fs.set(f) {
			kinds++
		}
	}
	if kinds != 1 {
		return t, usageErrorf("give exactly one of --schedule, --topic, --http and --event")
	}
	only := func(flag, with string) error {
		if c.fs.set(flag) && !c.fs.set(with) {
			return usageErrorf("--%s goes with --%s", flag, with)
		}
		return nil
	}
	for _, p := range [][2]string{{"timezone", "schedule"}, {"filter", "topic"}, {"methods", "http"}, {"source", "event"}} {
		if err := only(p[0], p[1]); err != nil {
			return t, err
		}
	}
	switch {
	case c.fs.set("schedule"):
		t.Schedule = &duct.ScheduleTrigger{Cron: c.schedule, Timezone: c.timezone}
	case c.fs.set("topic"):
		t.Topic = &duct.TopicTrigger{Name: c.topic, Filter: c.filter}
	case c.fs.set("http"):
		t.HTTP = &duct.HTTPTrigger{Path: c.http}
		for _, m := range strings.Split(c.methods, ",") {
			if m = strings.ToUpper(strings.TrimSpace(m)); m != "" {
				t.HTTP.Methods = append(t.HTTP.Methods, m)
			}
		}
	case c.fs.set("event"):
		t.Event = &duct.EventTrigger{Type: c.event, Source: c.source}
	}
	return t, nil
}

func (c *triggersCmd) add(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "function NAME"); err != nil {
		return err
	}
	t, err := c.trigger()
	if err != nil {
		return err
	}
	return c.change(ctx, e, args[0], "add", func(ts []duct.TriggerInfo) ([]duct.Trigger, error) {
		out := plain(ts)
		for _, ti := range ts {
			if ti.ID == t.ID() {
				return nil, fmt.Errorf("%s has this trigger already (%s, index %d)", args[0], ti.ID, ti.Index)
			}
		}
		return append(out, t), nil
	})
}

func (c *triggersCmd) remove(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 2, 2, "function NAME and the trigger's INDEX or ID"); err != nil {
		return err
	}
	which := args[1]
	return c.change(ctx, e, args[0], "rm", func(ts []duct.TriggerInfo) ([]duct.Trigger, error) {
		for _, ti := range ts {
			if ti.ID == which || strconv.Itoa(ti.Index) == which {
				return append(plain(ts[:ti.Index]), plain(ts[ti.Index+1:])...), nil
			}
		}
		return nil, fmt.Errorf("%s has no trigger %q: 'duct triggers ls %s' lists them", args[0], which, args[0])
	})
}

// change reads the function's triggers, edits them and stores the list
// as a new version, unless another version began serving meanwhile.
func (c *triggersCmd) change(ctx context.Context, e *env, name, op string, edit func([]duct.TriggerInfo) ([]duct.Trigger, error)) error {
	cl, err := e.client()
	if err != nil {
		return err
	}
	cur, err := cl.Triggers(ctx, name)
	if err != nil {
		return fmt.Errorf("triggers %s %s: %w", op, name, err)
	}
	ts, err := edit(cur.Triggers)
	if err != nil {
		return fmt.Errorf("triggers %s %s: %w", op, name, err)
	}
	ft, err := cl.SetTriggers(ctx, name, cur.Version, ts)
	if err != nil {
		if errors.Is(err, duct.ErrConflict) && strings.Contains(err.Error(), "serves now") {
			err = fmt.Errorf("%w\n(another change came first: run the command again)", err)
		}
		return fmt.Errorf("triggers %s %s: %w", op, name, err)
	}
	if c.json {
		return writeJSON(e.stdout, ft)
	}
	fmt.Fprintf(e.stdout, "%s: %d trigger%s; version %d serves\n", name, len(ft.Triggers), plural(len(ft.Triggers)), ft.Version)
	return nil
}

// plain is the triggers of a listing, as a spec holds them.
func plain(ts []duct.TriggerInfo) []duct.Trigger {
	out := make([]duct.Trigger, 0, len(ts))
	for _, ti := range ts {
		out = append(out, ti.Trigger)
	}
	return out
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
