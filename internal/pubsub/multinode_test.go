package pubsub

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/duct-dev/duct/internal/broker"
)

// twoNodes starts a NATS server (embedded, listening on loopback) and two
// brokers sharing it, as two Duct servers would.
func twoNodes(t *testing.T) (*Broker, *Broker) {
	t.Helper()
	ctx := context.Background()
	srv, err := broker.Open(ctx, broker.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	node := func() *Broker {
		nb, err := broker.Open(ctx, broker.Config{URL: srv.ClientURL()})
		if err != nil {
			t.Fatal(err)
		}
		p, err := New(ctx, nb, Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			p.Close()
			nb.Close()
		})
		return p
	}
	return node(), node()
}

func TestTwoNodes(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	topic, sub := topicAndSub(t, a, Subscription{})
	// Configs made on one node serve on the other.
	msgs := make([]Message, 50)
	for i := range msgs {
		msgs[i] = Message{Data: []byte(fmt.Sprint(i))}
	}
	publish(t, b, topic, msgs...)
	got := pullN(t, b, sub, 50, 10*time.Second)
	// Acks through the node that did not deliver reach JetStream.
	ack(t, a, sub, got...)
	pullNone(t, b, sub, 300*time.Millisecond)
	pullNone(t, a, sub, 300*time.Millisecond)

	// A nack through the other node redelivers.
	publish(t, a, topic, text("x")...)
	r := pullN(t, b, sub, 1, 5*time.Second)[0]
	nack(t, a, sub, r)
	again := pullN(t, a, sub, 1, 5*time.Second)[0]
	if again.Message.ID != r.Message.ID {
		t.Fatalf("redelivered %s, want %s", again.Message.ID, r.Message.ID)
	}
	ack(t, a, sub, again)

	// A seek made on one node moves the other's deliveries.
	publish(t, a, topic, text("y")...)
	y := pullN(t, b, sub, 1, 5*time.Second)[0]
	ack(t, b, sub, y)
	if err := a.Seek(ctx, sub, y.Message.PublishTime); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		got, _ := b.Pull(pctx, sub, 1, true)
		cancel()
		if len(got) == 1 && got[0].Message.ID == y.Message.ID {
			ack(t, b, sub, got...)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other node did not follow the seek")
		}
	}

	// Deleting the topic on one node detaches the subscription on both.
	if err := a.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if s, err := b.GetSubscription(ctx, sub); err != nil || s.Topic != DeletedTopic {
		t.Fatalf("on the other node: %+v, %v", s, err)
	}
	pullNone(t, b, sub, 500*time.Millisecond)
}
