package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/id"
	"github.com/duct-dev/duct/internal/pubsub"
)

// What topic triggers deliver: Eventarc's Pub/Sub event.
const (
	// TypeMessagePublished is the CloudEvent type of a topic trigger's
	// events.
	TypeMessagePublished = "google.cloud.pubsub.topic.v1.messagePublished"
	// Project is the project in the Pub/Sub names events carry.
	Project = "duct"
)

// Labels Duct puts on the subscriptions of topic triggers.
const (
	LabelFunction = "duct-function"
	LabelTrigger  = "duct-trigger"
)

// SubscriptionName is the Pub/Sub subscription topic trigger id of
// function fn reads: fn.FUNCTION.TRIGGER-ID. It is the same on every
// node and for every version with the same trigger.
func SubscriptionName(fn, id string) string { return "fn." + fn + "." + id }

// topicSource is the CloudEvent source of a topic's messages.
func topicSource(topic string) string {
	return "//pubsub.googleapis.com/projects/" + Project + "/topics/" + topic
}

// messagePublished is the data of a topic trigger's event: Google's
// MessagePublishedData, the body of a push delivery (message ids and
// publish times in both spellings, as Google sends them).
type messagePublished struct {
	Message         publishedMessage `json:"message"`
	Subscription    string           `json:"subscription"`
	DeliveryAttempt int              `json:"deliveryAttempt,omitempty"`
}

type publishedMessage struct {
	Data        []byte            `json:"data,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	MessageID   string            `json:"messageId"`
	MessageID2  string            `json:"message_id"`
	PublishTime string            `json:"publishTime"`
	PublishTim2 string            `json:"publish_time"`
	OrderingKey string            `json:"orderingKey,omitempty"`
}

// messageEvent is the CloudEvent of a delivered message.
func messageEvent(topic, sub string, r *pubsub.Received) duct.CloudEvent {
	m := &r.Message
	pt := m.PublishTime.UTC().Format(time.RFC3339Nano)
	data, _ := json.Marshal(messagePublished{
		Message: publishedMessage{Data: m.Data, Attributes: m.Attributes, MessageID: m.ID, MessageID2: m.ID,
			PublishTime: pt, PublishTim2: pt, OrderingKey: m.OrderingKey},
		Subscription:    "projects/" + Project + "/subscriptions/" + sub,
		DeliveryAttempt: r.DeliveryAttempt,
	})
	return duct.CloudEvent{
		SpecVersion: duct.CloudEventsVersion, ID: m.ID, Source: topicSource(topic), Type: TypeMessagePublished,
		Time: m.PublishTime, DataContentType: "application/json", Data: data,
	}
}

// subscriptionFor is the subscription a topic trigger of spec reads: the
// ack deadline covers the function's timeout (up to Google's 600 s; a
// longer invocation has its deadline extended while it runs), redelivery
// backs off from 10 s to 10 min, and a function with retry.onFailure
// gets its failures dead-lettered there after 1 + retry.attempts
// deliveries (at least 5, Google's minimum).
func subscriptionFor(fn, id string, t *duct.TopicTrigger, spec *duct.Function) pubsub.Subscription {
	s := pubsub.Subscription{
		Name:        SubscriptionName(fn, id),
		Topic:       t.Name,
		AckDeadline: ackDeadline(spec),
		Retry:       &pubsub.RetryPolicy{MinBackoff: pubsub.DefaultMinBackoff, MaxBackoff: pubsub.DefaultMaxBackoff},
		Filter:      t.Filter,
		Labels:      map[string]string{LabelFunction: fn, LabelTrigger: id},
	}
	if r := spec.Retry; r != nil && r.OnFailure != "" {
		attempts := duct.DefaultRetryAttempts
		if r.Attempts != nil {
			attempts = *r.Attempts
		}
		s.DeadLetter = &pubsub.DeadLetterPolicy{Topic: r.OnFailure,
			MaxAttempts: min(max(attempts+1, pubsub.MinDeadLetterTries), pubsub.MaxDeadLetterTries)}
	}
	return s
}

func ackDeadline(spec *duct.Function) time.Duration {
	return min(max(spec.Timeout.D()+10*time.Second, pubsub.MinAckDeadline), pubsub.MaxAckDeadline)
}

// sameSettings reports whether a stored subscription has the settings a
// trigger wants.
func sameSettings(got, want *pubsub.Subscription) bool {
	if got.Topic != want.Topic || got.Filter != want.Filter || got.AckDeadline != want.AckDeadline {
		return false
	}
	if (got.Retry == nil) != (want.Retry == nil) || got.Retry != nil && *got.Retry != *want.Retry {
		return false
	}
	return (got.DeadLetter == nil) == (want.DeadLetter == nil) && (got.DeadLetter == nil || *got.DeadLetter == *want.DeadLetter)
}

// dispatcher reads one topic trigger's subscription on this node and
// delivers each message to the function: acknowledged when the function
// answers 2xx, handed back for redelivery (the subscription's backoff)
// otherwise.
type dispatcher struct {
	ps     pubsub.Service
	runner Runner
	log    *slog.Logger
	fn, id string
	topic  string
	filter string
	sub    string
	spec   atomic.Pointer[duct.Function] // the serving spec
	// ensure makes the subscription again when it is found missing.
	ensure func(ctx context.Context) error
	// observe, when set, sees each delivery's answer (benchmarks).
	observe func(status int, body []byte)

	cancel context.CancelFunc // stops reading
	done   chan struct{}      // closed once run has returned
	// work is the context of deliveries: it outlives cancel for the
	// manager's close grace, unless stopWork ends it.
	work     context.Context
	stopWork context.CancelFunc
}

// run delivers until ctx ends, reopening the stream when it breaks. A
// stream is closed once the deliveries it started are settled.
func (d *dispatcher) run(ctx context.Context) {
	defer close(d.done)
	var wg sync.WaitGroup
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		spec := d.spec.Load()
		window := min(max(spec.Concurrency*spec.MaxInstances, 1), pubsub.MaxPullMessages)
		st, err := d.ps.StreamingPull(ctx, d.sub, pubsub.StreamOptions{MaxOutstandingMessages: window})
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("topic trigger: cannot read its subscription; trying again", "function", d.fn,
					"subscription", d.sub, "err", err, "in", backoff)
			}
			if errors.Is(err, duct.ErrNotFound) && d.ensure != nil && ctx.Err() == nil {
				if err := d.ensure(ctx); err != nil && ctx.Err() == nil {
					d.log.Warn("topic trigger: cannot make its subscription", "function", d.fn, "subscription", d.sub, "err", err)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for {
			msgs, err := st.Receive(ctx)
			if err != nil {
				break
			}
			for i := range msgs {
				wg.Add(1)
				go func(r pubsub.Received) {
					defer wg.Done()
					d.deliver(d.work, &r)
				}(msgs[i])
			}
		}
		wg.Wait()
		st.Close()
	}
}

// deliver runs the function on one message and settles the message.
func (d *dispatcher) deliver(ctx context.Context, r *pubsub.Received) {
	spec := d.spec.Load()
	hops := 1
	if v, ok := r.Message.Attributes[duct.AttrHops]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			hops = min(n, duct.MaxHops) + 1
		}
	}
	if hops > duct.MaxHops {
		d.log.Error("topic trigger: message dropped: it comes from a chain of more than the allowed invocations (a loop?)",
			"function", d.fn, "topic", d.topic, "message", r.Message.ID, "hops", hops, "max", duct.MaxHops)
		d.settle(ctx, r, true)
		return
	}
	ev := messageEvent(d.topic, d.sub, r)
	inv := eventInvocation(d.fn, &ev, hops, "")
	if ackDeadline(spec) < spec.Timeout.D()+10*time.Second {
		stop := d.extend(ctx, r)
		defer stop()
	}
	rec := &recorder{keep: d.observe != nil}
	rep, err := d.runner.Attempt(ctx, rec, inv)
	status := rec.status
	if rep != nil {
		status = rep.Status
	}
	if d.observe != nil {
		d.observe(status, rec.body)
	}
	ok := err == nil && status >= 200 && status < 300
	if !ok && err != nil && !errors.Is(err, duct.ErrNotFound) && ctx.Err() == nil {
		d.log.Warn("topic trigger: delivery failed", "function", d.fn, "message", r.Message.ID, "err", err)
	}
	d.settle(ctx, r, ok)
}

// settle acknowledges a message, or hands it back for redelivery.
func (d *dispatcher) settle(ctx context.Context, r *pubsub.Received, ack bool) {
	if ctx.Err() != nil {
		return // the stream is closing: what it held is redelivered
	}
	var err error
	if ack {
		err = d.ps.Acknowledge(ctx, d.sub, []string{r.AckID})
	} else {
		err = d.ps.ModifyAckDeadline(ctx, d.sub, []string{r.AckID}, 0)
	}
	if err != nil && ctx.Err() == nil {
		d.log.Warn("topic trigger: cannot settle a message; it will be redelivered", "function", d.fn,
			"message", r.Message.ID, "ack", ack, "err", err)
	}
}

// extend keeps a message leased while an invocation longer than the
// longest ack deadline runs.
func (d *dispatcher) extend(ctx context.Context, r *pubsub.Received) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(pubsub.MaxAckDeadline / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = d.ps.ModifyAckDeadline(ctx, d.sub, []string{r.AckID}, pubsub.MaxAckDeadline)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// eventInvocation is the invocation delivering ev to fn: a POST of ev in
// binary mode.
func eventInvocation(fn string, ev *duct.CloudEvent, hops int, key string) *duct.QueuedInvocation {
	return &duct.QueuedInvocation{
		ID: id.New(), Function: fn, Hops: hops, IdempotencyKey: key, SubmittedAt: time.Now().UTC(),
		Request: duct.InvocationRequest{Method: http.MethodPost, Path: "/", Header: BinaryHeader(ev), Body: ev.Data},
	}
}

// recorder is the ResponseWriter of a delivery: it keeps the status, and
// the body's first KiB when asked.
type recorder struct {
	h      http.Header
	status int
	keep   bool
	body   []byte
}

func (r *recorder) Header() http.Header {
	if r.h == nil {
		r.h = http.Header{}
	}
	return r.h
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.keep && len(r.body) < 1024 {
		r.body = append(r.body, p[:min(len(p), 1024-len(r.body))]...)
	}
	return len(p), nil
}
