package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/api"
)

// subsCmd is `duct subs create|ls|rm|pull|seek`.
type subsCmd struct {
	topic, filter, deadLetter, push, at string
	labels                              listFlag
	ackDeadline, minBackoff, maxBackoff durationFlag
	retention, wait                     durationFlag
	maxAttempts, max                    int
	ordering, ack, json                 bool
	fs                                  *flagSet // to tell flags given from defaults
}

func (c *subsCmd) info() cmdInfo {
	return cmdInfo{
		name:    "subs",
		group:   "Messages",
		summary: "Create, list, remove, pull from and seek Pub/Sub subscriptions",
		usage:   "create NAME --topic TOPIC | ls | rm NAME... | pull NAME | seek NAME --time T [flags]",
		help: `
Subs manages the server's Pub/Sub subscriptions: durable cursors on a
topic, each receiving every message published to the topic after it was
created, at least once.

  create NAME --topic T   create a subscription (deploy role), with an ack
                          deadline, a filter, ordering, a retry policy, a
                          dead-letter topic or a push endpoint
  ls                      list subscriptions (read role), or --topic's
  rm NAME...              delete subscriptions (deploy role)
  pull NAME               pull messages (invoke role): up to --max, waiting
                          up to --wait for one; --ack acknowledges them,
                          otherwise they come back after the ack deadline
  seek NAME --time T      replay from, or skip to, a time (invoke role):
                          messages published from T on are delivered again,
                          earlier ones count as acknowledged; T is RFC 3339
                          or a duration back, such as 10m

A filter selects messages by attributes in Google's syntax, such as
'attributes.kind = "image"' or 'hasPrefix(attributes.path, "img/")';
the others are acknowledged without delivery. After --max-attempts
deliveries without an ack, a message moves to the --dead-letter topic.`,
		examples: `
duct subs create thumbs --topic uploads --filter 'attributes.kind = "image"'
duct subs create orders-eu --topic orders --ordering --dead-letter orders-failed --max-attempts 10
duct subs pull thumbs --max 10 --ack
duct subs pull thumbs --wait 30s --json
duct subs seek thumbs --time 1h
duct subs ls --topic uploads`,
		complete: "create ls rm pull seek",
	}
}

func (c *subsCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	fs.StringVar(&c.topic, "topic", "", "the `topic` to subscribe to (create), or to list the subscriptions of (ls)")
	fs.Var(&c.ackDeadline, "ack-deadline", "how long a delivered message stays leased, 10s to 10m (create; default 10s)")
	fs.StringVar(&c.filter, "filter", "", "deliver only messages matching this attribute `filter` (create)")
	fs.BoolVar(&c.ordering, "ordering", false, "deliver messages with the same ordering key in order (create)")
	fs.StringVar(&c.deadLetter, "dead-letter", "", "move undeliverable messages to this `topic` (create)")
	fs.IntVar(&c.maxAttempts, "max-attempts", 0, "deliveries before a message moves to --dead-letter, 5 to 100 (create; default 5)")
	fs.Var(&c.minBackoff, "min-backoff", "first delay before a nacked message is redelivered (create; default 10s)")
	fs.Var(&c.maxBackoff, "max-backoff", "longest delay between redeliveries (create; default 10m)")
	fs.Var(&c.retention, "retention", "how far back seek can go (create; default the topic's retention)")
	fs.StringVar(&c.push, "push-endpoint", "", "POST messages to this `URL` instead of waiting for pulls (create)")
	fs.Var(&c.labels, "label", "a `KEY=VALUE` label (create; repeatable)")
	fs.IntVar(&c.max, "max", 1, "most messages to pull, 1 to 1000 (pull)")
	fs.Var(&c.wait, "wait", "how long to wait for a message when none is ready, up to 5m (pull)")
	fs.BoolVar(&c.ack, "ack", false, "acknowledge the pulled messages (pull)")
	fs.StringVar(&c.at, "time", "", "seek to this RFC 3339 `time`, or this far back (a duration such as 10m)")
	jsonFlag(fs, &c.json)
	c.fs = fs
}

// subsCreateFlags are the flags of subs create alone.
var subsCreateFlags = []string{"ack-deadline", "filter", "ordering", "dead-letter", "max-attempts", "min-backoff",
	"max-backoff", "retention", "push-endpoint", "label"}

func (c *subsCmd) run(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing subcommand: create, ls, rm, pull or seek")
	}
	sub, args := args[0], args[1:]
	if sub != "create" {
		for _, f := range subsCreateFlags {
			if c.fs.set(f) {
				return usageErrorf("--%s applies to subs create", f)
			}
		}
	}
	if sub != "pull" && (c.fs.set("max") || c.fs.set("wait") || c.fs.set("ack")) {
		return usageErrorf("--max, --wait and --ack apply to subs pull")
	}
	if sub != "seek" && c.fs.set("time") {
		return usageErrorf("--time applies to subs seek")
	}
	if c.fs.set("topic") && sub != "create" && sub != "ls" && sub != "list" {
		return usageErrorf("--topic applies to subs create and ls")
	}
	switch sub {
	case "create":
		return c.create(ctx, e, args)
	case "ls", "list":
		return c.list(ctx, e, args)
	case "rm", "delete":
		return c.remove(ctx, e, args)
	case "pull":
		return c.pull(ctx, e, args)
	case "seek":
		return c.seek(ctx, e, args)
	}
	return usageErrorf("unknown subcommand %q: want create, ls, rm, pull or seek", sub)
}

func (c *subsCmd) create(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "subscription NAME"); err != nil {
		return err
	}
	if c.topic == "" {
		return usageErrorf("missing --topic: the topic to subscribe to")
	}
	if c.fs.set("max-attempts") && c.deadLetter == "" {
		return usageErrorf("--max-attempts applies with --dead-letter")
	}
	labels, err := keyValues("--label", c.labels)
	if err != nil {
		return err
	}
	s := api.Subscription{
		Topic: c.topic, AckDeadlineSeconds: int(c.ackDeadline.v.D() / time.Second), Filter: c.filter,
		EnableMessageOrdering: c.ordering, MessageRetentionDuration: c.retention.v, Labels: labels,
	}
	if c.ackDeadline.v != 0 && c.ackDeadline.v.D()%time.Second != 0 {
		return usageErrorf("--ack-deadline %s: want whole seconds", c.ackDeadline.v)
	}
	if c.minBackoff.v != 0 || c.maxBackoff.v != 0 {
		s.RetryPolicy = &api.RetryPolicy{MinimumBackoff: c.minBackoff.v, MaximumBackoff: c.maxBackoff.v}
	}
	if c.deadLetter != "" {
		s.DeadLetterPolicy = &api.DeadLetterPolicy{DeadLetterTopic: c.deadLetter, MaxDeliveryAttempts: c.maxAttempts}
	}
	if c.push != "" {
		s.PushConfig = &api.PushConfig{PushEndpoint: c.push}
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	out, err := cl.CreateSubscription(ctx, args[0], s)
	if err != nil {
		return fmt.Errorf("subs create %s: %w", args[0], trimOp(err, "subscription", args[0]))
	}
	if c.json {
		return writeJSON(e.stdout, out)
	}
	fmt.Fprintf(e.stdout, "%s: created, on topic %s\n", out.Name, out.Topic)
	return nil
}

func (c *subsCmd) list(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 0, ""); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	subs, err := cl.Subscriptions(ctx, c.topic)
	if err != nil {
		return fmt.Errorf("subs ls: %w", err)
	}
	if c.json {
		if subs == nil {
			subs = []api.Subscription{}
		}
		return writeJSON(e.stdout, subs)
	}
	if len(subs) == 0 {
		fmt.Fprintln(e.stderr, "No subscriptions yet. Create one with 'duct subs create NAME --topic TOPIC'.")
		return nil
	}
	now := time.Now()
	t := newTable(e.stdout, "NAME", "TOPIC", "ACK DEADLINE", "DELIVERY", "FILTER", "CREATED")
	for _, s := range subs {
		t.row(s.Name, s.Topic, fmt.Sprintf("%ds", s.AckDeadlineSeconds), delivery(s), s.Filter, age(s.CreatedAt, now))
	}
	return t.flush()
}

// delivery says how a subscription delivers, in a few words.
func delivery(s api.Subscription) string {
	d := "pull"
	if s.PushConfig != nil {
		d = "push " + s.PushConfig.PushEndpoint
	}
	if s.EnableMessageOrdering {
		d += ", ordered"
	}
	if dl := s.DeadLetterPolicy; dl != nil {
		d += fmt.Sprintf(", dead letters to %s after %d", dl.DeadLetterTopic, dl.MaxDeliveryAttempts)
	}
	return d
}

func (c *subsCmd) remove(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing subscription NAME")
	}
	if c.json {
		return usageErrorf("--json applies to subs create, ls and pull")
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	return eachName(e, args, "subs rm", "deleted", func(name string) error {
		if err := cl.DeleteSubscription(ctx, name); err != nil {
			return trimOp(err, "subscription", name)
		}
		return nil
	})
}

func (c *subsCmd) pull(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "subscription NAME"); err != nil {
		return err
	}
	name := args[0]
	if c.max < 1 || c.max > 1000 {
		return usageErrorf("--max %d: want 1 to 1000", c.max)
	}
	if c.wait.v < 0 || c.wait.v.D() > api.MaxPullWait {
		return usageErrorf("--wait %s: want up to %s", c.wait.v, api.MaxPullWait)
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	got, err := cl.Pull(ctx, name, c.max, c.wait.v.D())
	if err != nil {
		return fmt.Errorf("subs pull %s: %w", name, trimOp(err, "subscription", name))
	}
	if c.ack && len(got) > 0 {
		ids := make([]string, len(got))
		for i, g := range got {
			ids[i] = g.AckID
		}
		if err := cl.Acknowledge(ctx, name, ids...); err != nil {
			return fmt.Errorf("subs pull %s: acknowledge: %w", name, err)
		}
	}
	if c.json {
		return writeJSON(e.stdout, api.PullResponse{ReceivedMessages: got})
	}
	if len(got) == 0 {
		fmt.Fprintln(e.stderr, "No messages.")
		return nil
	}
	header := []string{"DATA", "MESSAGE ID", "PUBLISHED", "ATTRIBUTES", "ORDERING KEY", "ATTEMPT"}
	if !c.ack {
		header = append(header, "ACK ID")
	}
	t := newTable(e.stdout, header...)
	for _, g := range got {
		attempt := ""
		if g.DeliveryAttempt > 0 {
			attempt = strconv.Itoa(g.DeliveryAttempt)
		}
		row := []string{showData(g.Message.Data), g.Message.MessageID, timestamp(g.Message.PublishTime),
			joinKeyValues(g.Message.Attributes), g.Message.OrderingKey, attempt}
		if !c.ack {
			row = append(row, g.AckID)
		}
		t.row(row...)
	}
	return t.flush()
}

// showData writes a message's data for a table: text on one line, cut
// at 60 characters, or its size when it is not text.
func showData(b []byte) string {
	if !utf8.Valid(b) {
		return fmt.Sprintf("(%s of binary data)", humanSize(int64(len(b))))
	}
	s := strconv.Quote(string(b))
	s = s[1 : len(s)-1]
	if utf8.RuneCountInString(s) > 60 {
		s = string([]rune(s)[:59]) + "…"
	}
	return s
}

func (c *subsCmd) seek(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "subscription NAME"); err != nil {
		return err
	}
	if c.at == "" {
		return usageErrorf("missing --time: an RFC 3339 time, or a duration back such as 10m")
	}
	if c.json {
		return usageErrorf("--json applies to subs create, ls and pull")
	}
	at, err := seekTime(c.at, time.Now())
	if err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	if err := cl.Seek(ctx, args[0], at); err != nil {
		return fmt.Errorf("subs seek %s: %w", args[0], trimOp(err, "subscription", args[0]))
	}
	fmt.Fprintf(e.stdout, "%s: messages published from %s on are delivered again\n", args[0], timestamp(at))
	return nil
}

// seekTime reads --time: an RFC 3339 time, or a duration back from now.
func seekTime(s string, now time.Time) (time.Time, error) {
	if d, err := duct.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usageErrorf("--time %q: want a duration back (positive) or an RFC 3339 time", s)
		}
		return now.Add(-d.D()), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageErrorf("--time %q: want an RFC 3339 time or a duration back such as 10m", s)
	}
	return t, nil
}
