package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/duct-dev/duct/internal/api"
)

// topicsCmd is `duct topics create|ls|rm|publish`.
type topicsCmd struct {
	labels, attrs listFlag
	retention     durationFlag
	data, key     string
	json          bool
}

func (c *topicsCmd) info() cmdInfo {
	return cmdInfo{
		name:    "topics",
		group:   "Messages",
		summary: "Create, list, remove and publish to Pub/Sub topics",
		usage:   "create NAME | ls | rm NAME... | publish NAME [MESSAGE] [flags]",
		help: `
Topics manages the server's Pub/Sub topics: named streams of messages that
subscriptions (duct subs) and topic triggers receive.

  create NAME      create a topic (deploy role); --retention sets how long
                   its messages are kept for replay (default 7 days)
  ls               list topics (read role)
  rm NAME...       delete topics (deploy role); their subscriptions stay,
                   receiving nothing more
  publish NAME     publish one message (invoke role): MESSAGE, or --data
                   (@FILE for a file, - for stdin), with --attr attributes
                   and an --ordering-key; prints the message's id

Messages are stored durably (fsynced) before publish answers. Up to 10 MB
a message. Google's Pub/Sub clients reach the same topics over gRPC when
the server runs with --pubsub-addr (projects/ANY/topics/NAME is NAME).`,
		examples: `
duct topics create uploads
duct topics publish uploads 'hello' --attr kind=greeting
duct topics publish uploads --data @photo.jpg --attr kind=image
duct topics ls --json
duct topics rm uploads`,
		complete: "create ls rm publish",
	}
}

func (c *topicsCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	fs.Var(&c.labels, "label", "a `KEY=VALUE` label of the new topic (create; repeatable)")
	fs.Var(&c.retention, "retention", "how long messages are kept for replay, 10m to 31 days (create; default 7 days)")
	fs.StringVar(&c.data, "data", "", "the message (publish): a `STRING`, @FILE for a file's content, or - for stdin")
	fs.alias("d", "data")
	fs.Var(&c.attrs, "attr", "a `KEY=VALUE` attribute of the message (publish; repeatable)")
	fs.StringVar(&c.key, "ordering-key", "", "the message's ordering `key` (publish)")
	jsonFlag(fs, &c.json)
}

func (c *topicsCmd) run(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing subcommand: create, ls, rm or publish")
	}
	sub, args := args[0], args[1:]
	if (len(c.labels) > 0 || c.retention.v != 0) && sub != "create" {
		return usageErrorf("--label and --retention apply to topics create")
	}
	if (c.data != "" || len(c.attrs) > 0 || c.key != "") && sub != "publish" {
		return usageErrorf("--data, --attr and --ordering-key apply to topics publish")
	}
	switch sub {
	case "create":
		return c.create(ctx, e, args)
	case "ls", "list":
		return c.list(ctx, e, args)
	case "rm", "delete":
		return c.remove(ctx, e, args)
	case "publish":
		return c.publish(ctx, e, args)
	}
	return usageErrorf("unknown subcommand %q: want create, ls, rm or publish", sub)
}

func (c *topicsCmd) create(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "topic NAME"); err != nil {
		return err
	}
	labels, err := keyValues("--label", c.labels)
	if err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	t, err := cl.CreateTopic(ctx, args[0], api.Topic{Labels: labels, MessageRetentionDuration: c.retention.v})
	if err != nil {
		return fmt.Errorf("topics create %s: %w", args[0], trimOp(err, "topic", args[0]))
	}
	if c.json {
		return writeJSON(e.stdout, t)
	}
	fmt.Fprintf(e.stdout, "%s: created\n", t.Name)
	return nil
}

func (c *topicsCmd) list(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 0, ""); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	ts, err := cl.Topics(ctx)
	if err != nil {
		return fmt.Errorf("topics ls: %w", err)
	}
	if c.json {
		if ts == nil {
			ts = []api.Topic{}
		}
		return writeJSON(e.stdout, ts)
	}
	if len(ts) == 0 {
		fmt.Fprintln(e.stderr, "No topics yet. Create one with 'duct topics create NAME'.")
		return nil
	}
	subs, err := cl.Subscriptions(ctx, "")
	if err != nil {
		return fmt.Errorf("topics ls: %w", err)
	}
	count := map[string]int{}
	for _, s := range subs {
		count[s.Topic]++
	}
	now := time.Now()
	t := newTable(e.stdout, "NAME", "SUBSCRIPTIONS", "RETENTION", "LABELS", "CREATED")
	for _, tp := range ts {
		t.row(tp.Name, fmt.Sprint(count[tp.Name]), shortDuration(tp.MessageRetentionDuration.D()), joinKeyValues(tp.Labels), age(tp.CreatedAt, now))
	}
	return t.flush()
}

func (c *topicsCmd) remove(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing topic NAME")
	}
	if c.json {
		return usageErrorf("--json applies to topics create, ls and publish")
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	return eachName(e, args, "topics rm", "deleted", func(name string) error {
		if err := cl.DeleteTopic(ctx, name); err != nil {
			return trimOp(err, "topic", name)
		}
		return nil
	})
}

func (c *topicsCmd) publish(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 2, "topic NAME"); err != nil {
		return err
	}
	name := args[0]
	attrs, err := keyValues("--attr", c.attrs)
	if err != nil {
		return err
	}
	var data []byte
	switch {
	case len(args) == 2 && c.data != "":
		return usageErrorf("give the message as an argument or with --data, not both")
	case len(args) == 2:
		data = []byte(args[1])
	case c.data == "-":
		if data, err = io.ReadAll(e.stdin); err != nil {
			return fmt.Errorf("topics publish %s: reading stdin: %w", name, err)
		}
	case strings.HasPrefix(c.data, "@"):
		if data, err = os.ReadFile(c.data[1:]); err != nil {
			return fmt.Errorf("topics publish %s: --data: %w", name, err)
		}
	default:
		data = []byte(c.data)
	}
	if len(data) == 0 && len(attrs) == 0 {
		return usageErrorf("nothing to publish: give a MESSAGE, --data or --attr (a message needs data or attributes)")
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	ids, err := cl.Publish(ctx, name, api.Message{Data: data, Attributes: attrs, OrderingKey: c.key})
	if err != nil {
		return fmt.Errorf("topics publish %s: %w", name, trimOp(err, "topic", name))
	}
	if c.json {
		return writeJSON(e.stdout, api.PublishResponse{MessageIDs: ids})
	}
	for _, id := range ids {
		fmt.Fprintln(e.stdout, id)
	}
	return nil
}

// keyValues reads repeated KEY=VALUE flags into a map.
func keyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("%s %q: want KEY=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// joinKeyValues writes a map as "a=1,b=2", sorted.
func joinKeyValues(m map[string]string) string {
	kvs := make([]string, 0, len(m))
	for k, v := range m {
		kvs = append(kvs, k+"="+v)
	}
	sort.Strings(kvs)
	return strings.Join(kvs, ",")
}

// shortDuration writes a duration in days or hours when it is whole
// ones: "7d", "36h", else "1h30m0s".
func shortDuration(d time.Duration) string {
	switch {
	case d == 0:
		return ""
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

// eachName runs do for every name, printing "NAME: done" for each that
// succeeds. One failing name is the command's error; with several, each
// failure is reported and the command fails at the end.
func eachName(e *env, names []string, op, done string, do func(string) error) error {
	failed := 0
	for _, name := range names {
		if err := do(name); err != nil {
			if len(names) == 1 {
				return fmt.Errorf("%s %s: %w", op, name, err)
			}
			fmt.Fprintf(e.stderr, "duct: %s %s: %v\n", op, name, err)
			failed++
			continue
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", name, done)
	}
	if failed > 0 {
		return &exitError{exitFailure}
	}
	return nil
}
