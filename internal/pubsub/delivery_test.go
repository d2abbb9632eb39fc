package pubsub

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct"
)

func TestPublishPullAck(t *testing.T) {
	p, _ := testBroker(t)
	ctx := context.Background()
	topic, sub := topicAndSub(t, p, Subscription{})
	before := time.Now().Add(-time.Second)
	ids := publish(t, p, topic,
		Message{Data: []byte("one"), Attributes: map[string]string{"k": "v", "with:colon\nand newline": "x"}},
		Message{Attributes: map[string]string{"only": "attributes"}},
		Message{Data: []byte("three"), OrderingKey: "key"})
	if want := []string{"1", "2", "3"}; !slices.Equal(ids, want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	got := pullN(t, p, sub, 3, 10*time.Second)
	slices.SortFunc(got, func(a, b Received) int { return cmpU64(mustU(a.Message.ID), mustU(b.Message.ID)) })
	if m := got[0].Message; string(m.Data) != "one" || m.Attributes["k"] != "v" || m.Attributes["with:colon\nand newline"] != "x" || m.ID != "1" {
		t.Fatalf("first message %+v", m)
	}
	if m := got[1].Message; m.Data != nil || m.Attributes["only"] != "attributes" {
		t.Fatalf("second message %+v", m)
	}
	if m := got[2].Message; m.OrderingKey != "key" || m.PublishTime.Before(before) || m.PublishTime.After(time.Now()) {
		t.Fatalf("third message %+v", m)
	}
	if got[0].DeliveryAttempt != 0 {
		t.Fatalf("delivery attempt %d without a dead-letter policy, want 0 (as Google)", got[0].DeliveryAttempt)
	}
	ack(t, p, sub, got...)
	// Acked: nothing comes back, not even after the lease would lapse.
	if err := p.ModifyAckDeadline(ctx, sub, []string{got[0].AckID}, 0); err != nil {
		t.Fatal(err)
	}
	pullNone(t, p, sub, 500*time.Millisecond)

	// Pull without waiting answers at once.
	start := time.Now()
	if got, err := p.Pull(ctx, sub, 10, false); err != nil || len(got) != 0 || time.Since(start) > 2*time.Second {
		t.Fatalf("pull without wait: %d, %v after %s", len(got), err, time.Since(start))
	}
}

func mustU(s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return n
}

func TestSubscriptionSeesOnlyLaterMessages(t *testing.T) {
	p, _ := testBroker(t)
	ctx := context.Background()
	topic, first := topicAndSub(t, p, Subscription{})
	publish(t, p, topic, text("before")...)
	if _, err := p.CreateSubscription(ctx, Subscription{Name: "late", Topic: topic}); err != nil {
		t.Fatal(err)
	}
	publish(t, p, topic, text("after")...)
	if got := datas(pullN(t, p, "late", 1, 5*time.Second)); got[0] != "after" {
		t.Fatalf("late subscription got %v, want [after]", got)
	}
	pullNone(t, p, "late", 300*time.Millisecond)
	if got := sorted(datas(pullN(t, p, first, 2, 5*time.Second))); !slices.Equal(got, []string{"after", "before"}) {
		t.Fatalf("first subscription got %v", got)
	}
}

func TestPullWaitsForPublish(t *testing.T) {
	p, _ := testBroker(t)
	topic, sub := topicAndSub(t, p, Subscription{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		publish(t, p, topic, text("late")...)
	}()
	start := time.Now()
	got := pullN(t, p, sub, 1, 10*time.Second)
	if string(got[0].Message.Data) != "late" || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("got %v after %s", datas(got), time.Since(start))
	}
	// A pull whose context ends returns its error.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := p.Pull(ctx, sub, 1, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pull past its deadline: %v", err)
	}
}

func TestUnknownNames(t *testing.T) {
	p, _ := testBroker(t)
	ctx := context.Background()
	for name, err := range map[string]error{
		"publish":   func() error { _, err := p.Publish(ctx, "nope", text("x")); return err }(),
		"pull":      func() error { _, err := p.Pull(ctx, "nope", 1, false); return err }(),
		"ack":       p.Acknowledge(ctx, "nope", []string{"x"}),
		"get topic": func() error { _, err := p.GetTopic(ctx, "nope"); return err }(),
		"deleted":   func() error { _, err := p.GetTopic(ctx, DeletedTopic); return err }(),
		"get sub":   func() error { _, err := p.GetSubscription(ctx, "nope"); return err }(),
		"seek":      p.Seek(ctx, "nope", time.Now()),
		"sub of nothing": func() error {
			_, err := p.CreateSubscription(ctx, Subscription{Name: "abc", Topic: "nope"})
			return err
		}(),
		"delete topic": p.DeleteTopic(ctx, "nope"),
		"delete sub":   p.DeleteSubscription(ctx, "nope"),
	} {
		if !errors.Is(err, duct.ErrNotFound) {
			t.Errorf("%s: %v, want not found", name, err)
		}
	}
}

func TestLapsedLeaseIsRedelivered(t *testing.T) {
	p, _ := testBroker(t)
	ctx := context.Background()
	// The dead-letter policy makes delivery attempts visible.
	dlq := "dlq-lapse"
	if _, err := p.CreateTopic(ctx, Topic{Name: dlq}); err != nil {
		t.Fatal(err)
	}
	topic, sub := topicAndSub(t, p, Subscription{DeadLetter: &DeadLetterPolicy{Topic: dlq, MaxAttempts: 5}})
	publish(t, p, topic, text("m")...)
	first := pullN(t, p, sub, 1, 5*time.Second)[0]
	if first.DeliveryAttempt != 1 {
		t.Fatalf("first delivery attempt %d", first.DeliveryAttempt)
	}
	// Shorten the lease to one second and let it lapse.
	if err := p.ModifyAckDeadline(ctx, sub, []string{first.AckID}, time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pullNone(t, p, sub, 700*time.Millisecond)
	second := pullN(t, p, sub, 1, 5*time.Second)[0]
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("redelivered after %s, before the lease ended", waited)
	}
	if second.DeliveryAttempt != 2 || second.Message.ID != first.Message.ID || second.AckID == first.AckID {
		t.Fatalf("redelivery %+v after %+v", second, first)
	}
	// Extending a lease keeps the message away past the default deadline.
	if err := p.ModifyAckDeadline(ctx, sub, []string{second.AckID}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	ack(t, p, sub, second)
	pullNone(t, p, sub, 500*time.Millisecond)
}

func TestAckDeadlineLapse(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the minimum ack deadline (10 s)")
	}
	p, _ := testBroker(t)
	topic, sub := topicAndSub(t, p, Subscription{AckDeadline: MinAckDeadline})
	publish(t, p, topic, text("m")...)
	first := pullN(t, p, sub, 1, 5*time.Second)[0]
	start := time.Now()
	second := pullN(t, p, sub, 1, 20*time.Second)[0]
	if waited := time.Since(start); waited < MinAckDeadline-time.Second || second.Message.ID != first.Message.ID {
		t.Fatalf("redelivered after %s: %+v", waited, second)
	}
}

func TestNackBackoff(t *testing.T) {
	p, _ := testBroker(t)
	topic, sub := topicAndSub(t, p, Subscription{Retry: &RetryPolicy{MinBackoff: 400 * time.Millisecond, MaxBackoff: 800 * time.Millisecond}})
	publish(t, p, topic, text("m")...)
	r := pullN(t, p, sub, 1, 5*time.Second)[0]
	for attempt, want := range []time.Duration{400 * time.Millisecond, 800 * time.Millisecond, 800 * time.Millisecond} {
		start := time.Now()
		nack(t, p, sub, r)
		r = pullN(t, p, sub, 1, 5*time.Second)[0]
		if waited := time.Since(start); waited < want-50*time.Millisecond || waited > want+time.Second {
			t.Fatalf("nack %d: redelivered after %s, want about %s", attempt+1, waited, want)
		}
	}
	ack(t, p, sub, r)

	// Without a retry policy a nack redelivers at once.
	topic, sub = topicAndSub(t, p, Subscription{})
	publish(t, p, topic, text("m")...)
	r = pullN(t, p, sub, 1, 5*time.Second)[0]
	start := time.Now()
	nack(t, p, sub, r)
	pullN(t, p, sub, 1, 5*time.Second)
	if waited := time.Since(start); waited > 300*time.Millisecond {
		t.Fatalf("nack without retry policy: redelivered after %s", waited)
	}
}

func TestDeadLetter(t *testing.T) {
	p, _ := testBroker(t)
	ctx := context.Background()
	dlq, dlqSub := topicAndSub(t, p, Subscription{})
	topic, sub := topicAndSub(t, p, Subscription{DeadLetter: &DeadLetterPolicy{Topic: dlq, MaxAttempts: 5}})
	publish(t, p, topic, Message{Data: []byte("poison"), Attributes: map[string]string{"k": "v"}, OrderingKey: "o"}, Message{Data: []byte("fine")})
	var poisonTime time.Time
	for attempt := 1; attempt <= 5; attempt++ {
		got := pullN(t, p, sub, 1, 5*time.Second)
		if attempt == 1 {
			got = append(got, pullN(t, p, sub, 1, 5*time.Second)...)
			slices.SortFunc(got, func(a, b Received) int { return strings.Compare(string(b.Message.Data), string(a.Message.Data)) })
			ack(t, p, sub, got[1]) // "fine"
		}
		r := got[0]
		if string(r.Message.Data) != "poison" || r.DeliveryAttempt != attempt {
			t.Fatalf("attempt %d: got %q with delivery attempt %d", attempt, r.Message.Data, r.DeliveryAttempt)
		}
		poisonTime = r.Message.PublishTime
		nack(t, p, sub, r)
	}
	dead := pullN(t, p, dlqSub, 1, 5*time.Second)[0]
	m := dead.Message
	want := map[string]string{
		"k":                  "v",
		DeadLetterSourceKey:  "projects/duct/subscriptions/" + sub,
		DeadLetterCountKey:   "5",
		DeadLetterProjectKey: "duct",
		DeadLetterTimeKey:    poisonTime.UTC().Format(time.RFC3339Nano),
	}
	if string(m.Data) != "poison" || m.OrderingKey != "o" || len(m.Attributes) != len(want) {
		t.Fatalf("dead letter %+v", m)
	}
	for k, v := range want {
		if m.Attributes[k] != v {
			t.Errorf("dead letter attribute %s = %q, want %q", k, m.Attributes[k], v)
		}
	}
	// The original is acknowledged: gone from its subscription.
	pullNone(t, p, sub, 500*time.Millisecond)
	if _, err := p.CreateSubscription(ctx, Subscription{Name: "bad-dlq", Topic: topic, DeadLetter: &DeadLetterPolicy{Topic: "missing"}}); !errors.Is(err, duct.ErrNotFound) {
		t.Fatalf("dead-letter topic that does not exist: %v", err)
	}
}
