package pubsub

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duct-dev/duct/internal/broker"
)

// testBroker is a pub/sub broker on its own embedded JetStream in a
// temporary directory, fsync on as in production.
func testBroker(t testing.TB) (*Broker, *broker.Broker) {
	t.Helper()
	return testBrokerAt(t, t.TempDir())
}

func testBrokerAt(t testing.TB, dir string) (*Broker, *broker.Broker) {
	t.Helper()
	nb, err := broker.Open(context.Background(), broker.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(context.Background(), nb, Config{})
	if err != nil {
		nb.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		nb.Close()
	})
	return p, nb
}

var uniq atomic.Int64

// topicAndSub creates a topic and a subscription on it with the given
// settings (Name and Topic are filled in).
func topicAndSub(t testing.TB, p *Broker, s Subscription) (string, string) {
	t.Helper()
	ctx := context.Background()
	n := uniq.Add(1)
	topic, sub := fmt.Sprintf("topic-%d", n), fmt.Sprintf("sub-%d", n)
	if _, err := p.CreateTopic(ctx, Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	s.Name, s.Topic = sub, topic
	if _, err := p.CreateSubscription(ctx, s); err != nil {
		t.Fatal(err)
	}
	return topic, sub
}

func publish(t testing.TB, p *Broker, topic string, msgs ...Message) []string {
	t.Helper()
	ids, err := p.Publish(context.Background(), topic, msgs)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func text(s ...string) []Message {
	out := make([]Message, len(s))
	for i, d := range s {
		out[i] = Message{Data: []byte(d)}
	}
	return out
}

// pullN pulls until it has n messages or the timeout passes.
func pullN(t testing.TB, p *Broker, sub string, n int, timeout time.Duration) []Received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []Received
	for len(out) < n {
		got, err := p.Pull(ctx, sub, min(n-len(out), MaxPullMessages), true)
		if err != nil {
			t.Fatalf("pulled %d of %d: %v", len(out), n, err)
		}
		out = append(out, got...)
	}
	return out
}

// pullNone checks that nothing is delivered for d.
func pullNone(t testing.TB, p *Broker, sub string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	got, err := p.Pull(ctx, sub, 10, true)
	if err == nil || len(got) > 0 {
		t.Fatalf("pulled %d messages (%v), want none", len(got), datas(got))
	}
}

func ack(t testing.TB, p *Broker, sub string, rs ...Received) {
	t.Helper()
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.AckID
	}
	if err := p.Acknowledge(context.Background(), sub, ids); err != nil {
		t.Fatal(err)
	}
}

func nack(t testing.TB, p *Broker, sub string, rs ...Received) {
	t.Helper()
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.AckID
	}
	if err := p.ModifyAckDeadline(context.Background(), sub, ids, 0); err != nil {
		t.Fatal(err)
	}
}

func datas(rs []Received) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Message.Data)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
