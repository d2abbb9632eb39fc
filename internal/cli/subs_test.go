package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct/internal/api"
)

// TestSubs runs duct subs create, ls, pull, seek and rm against a server,
// with bad input along the way.
func TestSubs(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	ok(t, server, "topics", "create", "orders")
	ok(t, server, "topics", "create", "orders-failed")
	if r := ok(t, server, "subs", "ls"); r.stdout != "" || !strings.Contains(r.stderr, "No subscriptions yet") {
		t.Errorf("ls of none: %+v", r)
	}
	r := ok(t, server, "subs", "create", "billing", "--topic", "orders", "--ack-deadline", "30s", "--ordering",
		"--dead-letter", "orders-failed", "--max-attempts", "7", "--min-backoff", "1s", "--max-backoff", "1m", "--label", "team=pay")
	if r.stdout != "billing: created, on topic orders\n" {
		t.Errorf("create: %q", r.stdout)
	}
	r = ok(t, server, "subs", "create", "big", "--topic", "orders", "--filter", `attributes.size = "big"`, "--json")
	var big api.Subscription
	if err := json.Unmarshal([]byte(r.stdout), &big); err != nil || big.Filter != `attributes.size = "big"` || big.AckDeadlineSeconds != 10 {
		t.Errorf("create --json: %v %q", err, r.stdout)
	}
	ok(t, server, "subs", "create", "audit", "--topic", "orders-failed")

	r = ok(t, server, "subs", "ls", "--topic", "orders")
	if !regexp.MustCompile(`(?m)^NAME\s+TOPIC\s+ACK DEADLINE\s+DELIVERY\s+FILTER\s+CREATED$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^billing\s+orders\s+30s\s+pull, ordered, dead letters to orders-failed after 7\s+-\s+\d+s$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^big\s+orders\s+10s\s+pull\s+attributes.size = "big"\s+`).MatchString(r.stdout) ||
		strings.Contains(r.stdout, "audit") {
		t.Errorf("ls --topic orders:\n%s", r.stdout)
	}
	var all []api.Subscription
	if err := json.Unmarshal([]byte(ok(t, server, "subs", "ls", "--json").stdout), &all); err != nil || len(all) != 3 {
		t.Errorf("ls --json: %v %+v", err, all)
	}
	var ofOrders []api.Subscription
	json.Unmarshal([]byte(ok(t, server, "subs", "ls", "--json", "--topic", "orders").stdout), &ofOrders)
	if len(ofOrders) != 2 || ofOrders[0].Name != "big" || ofOrders[1].DeadLetterPolicy == nil || ofOrders[1].DeadLetterPolicy.MaxDeliveryAttempts != 7 {
		t.Errorf("ls --json --topic orders: %+v", ofOrders)
	}

	before := time.Now().Add(-time.Second)
	ok(t, server, "topics", "publish", "orders", "first", "--attr", "size=big")
	ok(t, server, "topics", "publish", "orders", "second")

	// Without --ack, the ack ids show and the messages stay leased.
	r = ok(t, server, "subs", "pull", "big", "--max", "5", "--wait", "10s")
	if !regexp.MustCompile(`(?m)^DATA\s+MESSAGE ID\s+PUBLISHED\s+ATTRIBUTES\s+ORDERING KEY\s+ATTEMPT\s+ACK ID$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^first\s+\S+\s+\d{4}-\d\d-\d\dT\S+Z\s+size=big\s+-\s+-\s+\S+$`).MatchString(r.stdout) ||
		strings.Contains(r.stdout, "second") {
		t.Errorf("pull big:\n%s", r.stdout)
	}
	// With --ack they are gone; the attempt shows on a dead-letter
	// subscription.
	r = ok(t, server, "subs", "pull", "billing", "--max", "5", "--wait", "10s", "--ack")
	if !regexp.MustCompile(`(?m)^first\s+\S+\s+\S+\s+size=big\s+-\s+1$`).MatchString(r.stdout) || strings.Contains(r.stdout, "ACK ID") {
		t.Errorf("pull billing --ack:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "second") {
		r2 := ok(t, server, "subs", "pull", "billing", "--wait", "10s", "--ack")
		if !strings.Contains(r2.stdout, "second") {
			t.Errorf("second message not pulled:\n%s%s", r.stdout, r2.stdout)
		}
	}
	if r := ok(t, server, "subs", "pull", "billing"); r.stdout != "" || !strings.Contains(r.stderr, "No messages.") {
		t.Errorf("pull after acking all: %+v", r)
	}

	// Seek back, by a duration and by a time.
	if r := ok(t, server, "subs", "seek", "billing", "--time", "1h"); !strings.Contains(r.stdout, "billing: messages published from ") {
		t.Errorf("seek: %q", r.stdout)
	}
	var pulled api.PullResponse
	json.Unmarshal([]byte(ok(t, server, "subs", "pull", "billing", "--max", "10", "--wait", "10s", "--ack", "--json").stdout), &pulled)
	if len(pulled.ReceivedMessages) == 0 || string(pulled.ReceivedMessages[0].Message.Data) != "first" {
		t.Errorf("pull after seek: %+v", pulled)
	}
	ok(t, server, "subs", "seek", "billing", "--time", before.UTC().Format(time.RFC3339))

	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"subs"}, 2, "missing subcommand"},
		{[]string{"subs", "make"}, 2, `unknown subcommand "make"`},
		{[]string{"subs", "create", "x-sub"}, 2, "missing --topic"},
		{[]string{"subs", "create", "--topic", "orders"}, 2, "missing subscription NAME"},
		{[]string{"subs", "create", "x-sub", "--topic", "orders", "--max-attempts", "5"}, 2, "--max-attempts applies with --dead-letter"},
		{[]string{"subs", "create", "x-sub", "--topic", "orders", "--ack-deadline", "10.5s"}, 2, "whole seconds"},
		{[]string{"subs", "ls", "--filter", "x"}, 2, "--filter applies to subs create"},
		{[]string{"subs", "rm", "x", "--max", "3"}, 2, "--max, --wait and --ack apply to subs pull"},
		{[]string{"subs", "pull", "billing", "--time", "1h"}, 2, "--time applies to subs seek"},
		{[]string{"subs", "pull", "billing", "--topic", "orders"}, 2, "--topic applies to subs create and ls"},
		{[]string{"subs", "pull"}, 2, "missing subscription NAME"},
		{[]string{"subs", "pull", "billing", "--max", "0"}, 2, "want 1 to 1000"},
		{[]string{"subs", "pull", "billing", "--wait", "1h"}, 2, "want up to 5m"},
		{[]string{"subs", "seek", "billing"}, 2, "missing --time"},
		{[]string{"subs", "seek", "billing", "--time", "yesterday"}, 2, "want an RFC 3339 time"},
		{[]string{"subs", "rm"}, 2, "missing subscription NAME"},
		{[]string{"subs", "create", "x-sub", "--topic", "nope"}, 1, "nope"},
		{[]string{"subs", "create", "billing", "--topic", "orders"}, 1, "billing"},
		{[]string{"subs", "create", "x-sub", "--topic", "orders", "--ack-deadline", "5s"}, 1, "ack"},
		{[]string{"subs", "create", "x-sub", "--topic", "orders", "--filter", "attributes.x ="}, 1, "filter"},
		{[]string{"subs", "pull", "nope"}, 1, "subs pull nope"},
		{[]string{"subs", "seek", "nope", "--time", "1m"}, 1, "subs seek nope"},
	} {
		r := run(t, server, bad.args...)
		if r.code != bad.code || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("duct %s: exit %d, stderr %q; want %d and %q", strings.Join(bad.args, " "), r.code, r.stderr, bad.code, bad.want)
		}
	}

	if r := ok(t, server, "subs", "rm", "billing", "big"); r.stdout != "billing: deleted\nbig: deleted\n" {
		t.Errorf("rm: %q", r.stdout)
	}
	if r := run(t, server, "subs", "rm", "billing"); r.code != 1 || !strings.Contains(r.stderr, "subs rm billing") {
		t.Errorf("rm again: %+v", r)
	}
}

func TestShowData(t *testing.T) {
	for in, want := range map[string]string{
		"hello":                  "hello",
		"two\nlines":             `two\nlines`,
		"\xff\xfe":               "(2 B of binary data)",
		strings.Repeat("x", 100): strings.Repeat("x", 59) + "…",
	} {
		if got := showData([]byte(in)); got != want {
			t.Errorf("showData(%q) = %q, want %q", in, got, want)
		}
	}
}
