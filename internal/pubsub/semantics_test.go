package pubsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/duct-dev/duct"
)

func keyed(key, data string) Message { return Message{Data: []byte(data), OrderingKey: key} }

func TestOrdering(t *testing.T) {
	p, _ := testBroker(t)
	ctx := context.Background()
	topic, sub := topicAndSub(t, p, Subscription{Ordering: true})
	publish(t, p, topic, keyed("a", "a1"), keyed("b", "b1"), keyed("a", "a2"), keyed("b", "b2"),
		keyed("a", "a3"), keyed("b", "b3"), keyed("c", "c1"), Message{Data: []byte("u1")})
	first := pullN(t, p, sub, 4, 5*time.Second)
	if got := sorted(datas(first)); !slices.Equal(got, []string{"a1", "b1", "c1", "u1"}) {
		t.Fatalf("first pull %v, want one message per key and the unkeyed one", got)
	}
	pullNone(t, p, sub, 300*time.Millisecond) // every key has one out
	byData := map[string]Received{}
	for _, r := range first {
		byData[string(r.Message.Data)] = r
	}
	ack(t, p, sub, byData["a1"], byData["c1"], byData["u1"])
	if got := datas(pullN(t, p, sub, 1, 5*time.Second)); got[0] != "a2" {
		t.Fatalf("after acking a1: %v, want a2", got)
	}
	// A nacked message holds its key back and comes again, before b2.
	nack(t, p, sub, byData["b1"])
	b1 := pullN(t, p, sub, 1, 5*time.Second)[0]
	if string(b1.Message.Data) != "b1" {
		t.Fatalf("after nacking b1: %q, want b1 again", b1.Message.Data)
	}
	pullNone(t, p, sub, 300*time.Millisecond)
	ack(t, p, sub, b1)
	b2 := pullN(t, p, sub, 1, 5*time.Second)[0]
	if string(b2.Message.Data) != "b2" {
		t.Fatalf("after acking b1: %q, want b2", b2.Message.Data)
	}
	// A lapsed lease holds its key back too.
	if err := p.ModifyAckDeadline(ctx, sub, []string{b2.AckID}, time.Second); err != nil {
		t.Fatal(err)
	}
	again := pullN(t, p, sub, 1, 5*time.Second)[0]
	if string(again.Message.Data) != "b2" {
		t.Fatalf("after b2's lease lapsed: %q, want b2 again", again.Message.Data)
	}
	ack(t, p, sub, again)
	if got := datas(pullN(t, p, sub, 1, 5*time.Second)); got[0] != "b3" {
		t.Fatalf("after acking b2: %v, want b3", got)
	}
}

// TestOrderingStream checks per-key order under a streaming pull that
// acks as it goes, with many keys interleaved.
func TestOrderingStream(t *testing.T) {
	p, _ := testBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic, sub := topicAndSub(t, p, Subscription{Ordering: true})
	const keys, per = 5, 40
	var msgs []Message
	for i := range per {
		for k := range keys {
			msgs = append(msgs, keyed(fmt.Sprint("k", k), fmt.Sprint(i)))
		}
	}
	publish(t, p, topic, msgs...)
	st, err := p.StreamingPull(ctx, sub, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	next := map[string]int{}
	for n := 0; n < keys*per; {
		got, err := st.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d: %v", n, err)
		}
		seen := map[string]bool{}
		for _, r := range got {
			k := r.Message.OrderingKey
			if seen[k] {
				t.Fatalf("two messages of key %s out at once", k)
			}
			seen[k] = true
			if want := fmt.Sprint(next[k]); string(r.Message.Data) != want {
				t.Fatalf("key %s: got %s, want %s", k, r.Message.Data, want)
			}
			next[k]++
			n++
		}
		ack(t, p, sub, got...)
	}
}

func TestFilterDelivery(t *testing.T) {
	p, nb := testBroker(t)
	ctx := context.Background()
	topic, sub := topicAndSub(t, p, Subscription{Filter: `attributes.kind = "image" AND NOT hasPrefix(attributes.name, "tmp")`})
	msg := func(kind, name string) Message {
		return Message{Data: []byte(kind + "/" + name), Attributes: map[string]string{"kind": kind, "name": name}}
	}
	publish(t, p, topic, msg("image", "a.png"), msg("video", "b.mp4"), msg("image", "tmp-c.png"), Message{Data: []byte("bare")}, msg("image", "d.png"))
	got := pullN(t, p, sub, 2, 5*time.Second)
	if d := sorted(datas(got)); !slices.Equal(d, []string{"image/a.png", "image/d.png"}) {
		t.Fatalf("got %v", d)
	}
	pullNone(t, p, sub, 300*time.Millisecond)
	ack(t, p, sub, got...)
	// Nothing is left unacknowledged: the rest were acked unseen.
	rec, _, err := p.subRec(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := nb.JS.Consumer(ctx, streamName(rec.TopicInc), consumerName(rec.Inc, rec.Gen))
		if err != nil {
			t.Fatal(err)
		}
		ci, err := info.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ci.NumAckPending == 0 && ci.NumPending == 0 && ci.AckFloor.Stream == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer still holds messages: %+v", ci)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := p.UpdateSubscription(ctx, Subscription{Name: sub, Topic: topic, Filter: `attributes:x`}); !errors.Is(err, duct.ErrInvalid) {
		t.Fatalf("changing the filter: %v, want invalid", err)
	}
}

func TestSeek(t *testing.T) {
	p, _ := testBroker(t)
	ctx := context.Background()
	topic, sub := topicAndSub(t, p, Subscription{})
	publish(t, p, topic, text("m1")...)
	time.Sleep(20 * time.Millisecond)
	publish(t, p, topic, text("m2")...)
	time.Sleep(20 * time.Millisecond)
	publish(t, p, topic, text("m3")...)
	got := pullN(t, p, sub, 3, 5*time.Second)
	slices.SortFunc(got, func(a, b Received) int { return bytes.Compare(a.Message.Data, b.Message.Data) })
	ack(t, p, sub, got[0], got[1]) // m3 stays leased
	m2 := got[1].Message.PublishTime

	// Back: m2 and m3 come again (m3's lease dies with the old consumer).
	if err := p.Seek(ctx, sub, m2); err != nil {
		t.Fatal(err)
	}
	again := pullN(t, p, sub, 2, 5*time.Second)
	if d := sorted(datas(again)); !slices.Equal(d, []string{"m2", "m3"}) {
		t.Fatalf("after seeking to m2: %v", d)
	}
	pullNone(t, p, sub, 300*time.Millisecond)
	// Acks of leases from before the seek are ignored.
	if err := p.Acknowledge(ctx, sub, []string{got[2].AckID}); err != nil {
		t.Fatal(err)
	}

	// Forward, into the future: what is there, and what is published
	// before that time, counts as acknowledged.
	future := time.Now().Add(time.Second)
	if err := p.Seek(ctx, sub, future); err != nil {
		t.Fatal(err)
	}
	publish(t, p, topic, text("m4")...)
	pullNone(t, p, sub, 300*time.Millisecond)
	time.Sleep(time.Until(future))
	publish(t, p, topic, text("m5")...)
	if d := datas(pullN(t, p, sub, 1, 5*time.Second)); d[0] != "m5" {
		t.Fatalf("after seeking forward: %v", d)
	}
	if err := p.Seek(ctx, sub, time.Time{}); !errors.Is(err, duct.ErrInvalid) {
		t.Fatalf("seek without a time: %v", err)
	}
}

func TestLargeMessages(t *testing.T) {
	p, _ := testBroker(t)
	ctx := context.Background()
	topic, sub := topicAndSub(t, p, Subscription{})
	big := bytes.Repeat([]byte("0123456789"), MaxMessageSize/10-2)
	attrs := map[string]string{"a": "b"} // data + attributes: exactly 10 MB... minus 18 bytes
	if _, err := p.Publish(ctx, topic, []Message{{Data: big, Attributes: attrs}}); err != nil {
		t.Fatal(err)
	}
	got := pullN(t, p, sub, 1, 10*time.Second)[0]
	if !bytes.Equal(got.Message.Data, big) || got.Message.Attributes["a"] != "b" {
		t.Fatalf("10 MB message came back with %d bytes", len(got.Message.Data))
	}
	ack(t, p, sub, got)
	over := make([]byte, MaxMessageSize+1)
	if _, err := p.Publish(ctx, topic, []Message{{Data: over}}); !errors.Is(err, duct.ErrTooLarge) {
		t.Fatalf("message over 10 MB: %v", err)
	}

	// 1000 messages in one request: one atomic batch, ids in order.
	msgs := make([]Message, MaxPublishBatch)
	for i := range msgs {
		msgs[i] = Message{Data: []byte(fmt.Sprint(i))}
	}
	ids := publish(t, p, topic, msgs...)
	for i := 1; i < len(ids); i++ {
		if mustU(ids[i]) != mustU(ids[i-1])+1 {
			t.Fatalf("ids not consecutive: %s then %s", ids[i-1], ids[i])
		}
	}
	all := pullN(t, p, sub, MaxPublishBatch, 20*time.Second)
	for _, r := range all {
		i := mustU(r.Message.ID) - mustU(ids[0])
		if string(r.Message.Data) != fmt.Sprint(i) {
			t.Fatalf("message %s carries %q, want %d", r.Message.ID, r.Message.Data, i)
		}
	}
	ack(t, p, sub, all...)
	if _, err := p.Publish(ctx, topic, make([]Message, MaxPublishBatch+1)); !errors.Is(err, duct.ErrTooLarge) {
		t.Fatalf("1001 messages: %v", err)
	}
}

func TestDeleteTopicDetaches(t *testing.T) {
	p, _ := testBroker(t)
	ctx := context.Background()
	topic, sub := topicAndSub(t, p, Subscription{})
	publish(t, p, topic, text("m1")...)
	held := pullN(t, p, sub, 1, 5*time.Second)[0]
	if err := p.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	s, err := p.GetSubscription(ctx, sub)
	if err != nil || s.Topic != DeletedTopic {
		t.Fatalf("subscription after its topic was deleted: %+v, %v", s, err)
	}
	if _, err := p.Publish(ctx, topic, text("x")); !errors.Is(err, duct.ErrNotFound) {
		t.Fatalf("publish to a deleted topic: %v", err)
	}
	// A new topic of the same name does not reattach it.
	if _, err := p.CreateTopic(ctx, Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	publish(t, p, topic, text("m2")...)
	pullNone(t, p, sub, 500*time.Millisecond)
	if got, err := p.Pull(ctx, sub, 1, false); err != nil || len(got) != 0 {
		t.Fatalf("pull without wait on a detached subscription: %v, %v", got, err)
	}
	_ = p.Acknowledge(ctx, sub, []string{held.AckID}) // harmless
	names, err := p.ListTopicSubscriptions(ctx, topic)
	if err != nil || len(names) != 0 {
		t.Fatalf("new topic's subscriptions: %v, %v", names, err)
	}
	if err := p.DeleteSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if _, err := p.GetSubscription(ctx, sub); !errors.Is(err, duct.ErrNotFound) {
		t.Fatalf("deleted subscription: %v", err)
	}
}

func TestConfigCRUD(t *testing.T) {
	p, _ := testBroker(t)
	ctx := context.Background()
	if _, err := p.CreateTopic(ctx, Topic{Name: "orders", Labels: map[string]string{"team": "shop"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateTopic(ctx, Topic{Name: "orders"}); !errors.Is(err, duct.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := p.CreateTopic(ctx, Topic{Name: "x"}); !errors.Is(err, duct.ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	tp, err := p.GetTopic(ctx, "orders")
	if err != nil || tp.Retention != DefaultRetention || tp.Labels["team"] != "shop" || tp.CreatedAt.IsZero() {
		t.Fatalf("get topic: %+v, %v", tp, err)
	}
	tp.Retention = time.Hour
	if _, err := p.UpdateTopic(ctx, tp); err != nil {
		t.Fatal(err)
	}
	if tp, _ = p.GetTopic(ctx, "orders"); tp.Retention != time.Hour {
		t.Fatalf("retention after update: %s", tp.Retention)
	}
	s, err := p.CreateSubscription(ctx, Subscription{Name: "orders-mail", Topic: "orders"})
	if err != nil || s.AckDeadline != DefaultAckDeadline {
		t.Fatalf("create subscription: %+v, %v", s, err)
	}
	if _, err := p.CreateSubscription(ctx, Subscription{Name: "orders-mail", Topic: "orders"}); !errors.Is(err, duct.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	s.AckDeadline = time.Minute
	s.Retry = &RetryPolicy{MinBackoff: time.Second, MaxBackoff: time.Minute}
	if s, err = p.UpdateSubscription(ctx, s); err != nil || s.AckDeadline != time.Minute {
		t.Fatalf("update: %+v, %v", s, err)
	}
	if got, _ := p.GetSubscription(ctx, "orders-mail"); got.AckDeadline != time.Minute || got.Retry == nil {
		t.Fatalf("after update: %+v", got)
	}
	s.Ordering = true
	if _, err := p.UpdateSubscription(ctx, s); !errors.Is(err, duct.ErrInvalid) {
		t.Fatalf("switching ordering on: %v", err)
	}
	ts, err := p.ListTopics(ctx)
	if err != nil || len(ts) != 1 || ts[0].Name != "orders" {
		t.Fatalf("list topics: %v, %v", ts, err)
	}
	subs, err := p.ListSubscriptions(ctx)
	if err != nil || len(subs) != 1 {
		t.Fatalf("list subscriptions: %v, %v", subs, err)
	}
	names, err := p.ListTopicSubscriptions(ctx, "orders")
	if err != nil || !slices.Equal(names, []string{"orders-mail"}) {
		t.Fatalf("topic subscriptions: %v, %v", names, err)
	}
}
