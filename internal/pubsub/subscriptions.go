package pubsub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/duct-dev/duct"
)

// consumerConfig is a subscription's durable pull consumer. JetStream's
// ack wait runs jsGrace past the subscription's ack deadline: while the
// node that delivered a message lives, its lease manager decides when it
// goes back; JetStream redelivers on its own only when that node is
// gone. No delivery limit: dead-lettering is Duct's, so nothing is ever
// dropped silently.
func (p *Broker) consumerConfig(rec subRecord, start *time.Time) jetstream.ConsumerConfig {
	c := jetstream.ConsumerConfig{
		Durable:       consumerName(rec.Inc, rec.Gen),
		Description:   "Duct pub/sub subscription " + rec.Name,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       rec.AckDeadline + jsGrace,
		MaxDeliver:    -1,
		MaxAckPending: -1,
		MaxWaiting:    512,
		Replicas:      p.replicas,
		Metadata:      map[string]string{"duct.subscription": rec.Name},
	}
	if start != nil {
		c.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		c.OptStartTime = start
	}
	return c
}

// CreateSubscription creates a subscription and its consumer; it sees
// the messages published from now on.
func (p *Broker) CreateSubscription(ctx context.Context, s Subscription) (Subscription, error) {
	if s.Topic == DeletedTopic {
		return Subscription{}, duct.Invalid("topic", "cannot subscribe to a deleted topic")
	}
	s, err := normSub(s)
	if err != nil {
		return Subscription{}, err
	}
	key := kvKey(s.Name)
	if _, err := p.subsKV.Get(ctx, key); err == nil {
		return Subscription{}, fmt.Errorf("subscription %q: %w", s.Name, duct.ErrConflict)
	}
	t, err := p.topic(ctx, s.Topic)
	if err != nil {
		return Subscription{}, err
	}
	if dl := s.DeadLetter; dl != nil {
		if _, err := p.topic(ctx, dl.Topic); err != nil {
			return Subscription{}, fmt.Errorf("dead-letter policy: %w", err)
		}
	}
	s.CreatedAt = p.now().UTC()
	rec := subRecord{Subscription: s, Inc: newInc(), TopicInc: t.Inc, Gen: 1}
	if _, err := p.js.CreateConsumer(ctx, streamName(t.Inc), p.consumerConfig(rec, nil)); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			p.uncacheTopic(t.Name)
			return Subscription{}, notFound("topic", s.Topic)
		}
		return Subscription{}, fmt.Errorf("create subscription %q: consumer: %w", s.Name, err)
	}
	rev, err := putJSON(ctx, p.subsKV, key, 0, rec)
	if err != nil {
		_ = p.js.DeleteConsumer(context.WithoutCancel(ctx), streamName(t.Inc), consumerName(rec.Inc, rec.Gen))
		return Subscription{}, fmt.Errorf("create subscription %q: %w", s.Name, err)
	}
	p.applySub(rec, rev)
	return s, nil
}

// subRec reads a subscription's record, reporting it detached when its
// topic is gone even if DeleteTopic did not get to mark it.
func (p *Broker) subRec(ctx context.Context, name string) (subRecord, uint64, error) {
	if checkName("subscription", name) != nil {
		return subRecord{}, 0, notFound("subscription", name)
	}
	rec, rev, err := getJSON[subRecord](ctx, p.subsKV, kvKey(name))
	if errors.Is(err, duct.ErrNotFound) {
		return rec, 0, notFound("subscription", name)
	}
	if err != nil {
		return rec, 0, fmt.Errorf("subscription %q: %w", name, err)
	}
	if !rec.detached() {
		t, err := p.topic(ctx, rec.Topic)
		if errors.Is(err, duct.ErrNotFound) || err == nil && t.Inc != rec.TopicInc {
			rec.Topic = DeletedTopic
		}
	}
	return rec, rev, nil
}

// GetSubscription reads a subscription.
func (p *Broker) GetSubscription(ctx context.Context, name string) (Subscription, error) {
	rec, _, err := p.subRec(ctx, name)
	return rec.Subscription, err
}

// UpdateSubscription sets the ack deadline, retry and dead-letter
// policies, push config, retention and labels of s.Name to those of s.
// The topic, filter and ordering cannot change (s.Topic may be empty).
func (p *Broker) UpdateSubscription(ctx context.Context, s Subscription) (Subscription, error) {
	for range casRetries {
		rec, rev, err := p.subRec(ctx, s.Name)
		if err != nil {
			return Subscription{}, err
		}
		if err := sameImmutable(rec.Subscription, s); err != nil {
			return Subscription{}, err
		}
		want := rec.Subscription
		want.AckDeadline, want.Retry, want.DeadLetter, want.Push = s.AckDeadline, s.Retry, s.DeadLetter, s.Push
		want.Retention, want.Labels = s.Retention, s.Labels
		if want, err = normSub(want); err != nil {
			return Subscription{}, err
		}
		if dl := want.DeadLetter; dl != nil && (rec.DeadLetter == nil || rec.DeadLetter.Topic != dl.Topic) {
			if _, err := p.topic(ctx, dl.Topic); err != nil {
				return Subscription{}, fmt.Errorf("dead-letter policy: %w", err)
			}
		}
		old := rec
		rec.Subscription = want
		if !rec.detached() && old.AckDeadline != want.AckDeadline {
			cfg := p.consumerConfig(rec, nil)
			if _, err := p.js.UpdateConsumer(ctx, streamName(rec.TopicInc), cfg); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				return Subscription{}, fmt.Errorf("update subscription %q: consumer: %w", s.Name, err)
			}
		}
		rev, err = putJSON(ctx, p.subsKV, kvKey(s.Name), rev, rec)
		if errors.Is(err, duct.ErrConflict) {
			continue
		}
		if err != nil {
			return Subscription{}, fmt.Errorf("update subscription %q: %w", s.Name, err)
		}
		p.applySub(rec, rev)
		return want, nil
	}
	return Subscription{}, fmt.Errorf("update subscription %q: changed concurrently, try again: %w", s.Name, duct.ErrConflict)
}

// ListSubscriptions lists every subscription, sorted by name.
func (p *Broker) ListSubscriptions(ctx context.Context) ([]Subscription, error) {
	recs, err := listJSON[subRecord](ctx, p.subsKV)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	out := make([]Subscription, 0, len(recs))
	for _, r := range recs {
		if !r.detached() {
			if t, err := p.topic(ctx, r.Topic); err != nil || t.Inc != r.TopicInc {
				r.Topic = DeletedTopic
			}
		}
		out = append(out, r.Subscription)
	}
	slices.SortFunc(out, func(a, b Subscription) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// ListTopicSubscriptions names the subscriptions attached to a topic.
func (p *Broker) ListTopicSubscriptions(ctx context.Context, topic string) ([]string, error) {
	t, err := p.topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	recs, err := listJSON[subRecord](ctx, p.subsKV)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("list subscriptions of %q: %w", topic, err)
	}
	var out []string
	for _, r := range recs {
		if r.Topic == t.Name && r.TopicInc == t.Inc {
			out = append(out, r.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// DeleteSubscription removes a subscription and its consumer; messages
// it holds are gone with it.
func (p *Broker) DeleteSubscription(ctx context.Context, name string) error {
	if checkName("subscription", name) != nil {
		return notFound("subscription", name)
	}
	key := kvKey(name)
	for i := 0; ; i++ {
		rec, rev, err := getJSON[subRecord](ctx, p.subsKV, key)
		if errors.Is(err, duct.ErrNotFound) {
			return notFound("subscription", name)
		}
		if err != nil {
			return fmt.Errorf("delete subscription %q: %w", name, err)
		}
		err = p.subsKV.Delete(ctx, key, jetstream.LastRevision(rev))
		if err == nil {
			p.dropSub(name, math.MaxUint64)
			err := p.js.DeleteConsumer(ctx, streamName(rec.TopicInc), consumerName(rec.Inc, rec.Gen))
			if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
				p.log.Warn("pubsub: delete consumer", "subscription", name, "err", err)
			}
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) || i == casRetries {
			return fmt.Errorf("delete subscription %q: %w", name, err)
		}
	}
}

// Seek moves a subscription to time t: a new consumer starts at the
// first message stored at or after t (within retention), so every
// message before t counts as acknowledged and every one from t on,
// delivered or not, is delivered again. Messages published after the
// seek but before t (a seek into the future) are skipped on delivery.
// Leases of the old consumer die with it.
func (p *Broker) Seek(ctx context.Context, name string, t time.Time) error {
	if t.IsZero() {
		return duct.Invalid("time", "seek needs a time")
	}
	for range casRetries {
		rec, rev, err := p.subRec(ctx, name)
		if err != nil {
			return err
		}
		if rec.detached() {
			return duct.Invalid("subscription", "%q is detached from its deleted topic: there is nothing to seek", name)
		}
		old := rec
		rec.Gen++
		rec.SeekTime = t.UTC()
		stream := streamName(rec.TopicInc)
		start := t
		if _, err := p.js.CreateConsumer(ctx, stream, p.consumerConfig(rec, &start)); err != nil {
			return fmt.Errorf("seek %q: consumer: %w", name, err)
		}
		rev, err = putJSON(ctx, p.subsKV, kvKey(name), rev, rec)
		if err != nil {
			_ = p.js.DeleteConsumer(context.WithoutCancel(ctx), stream, consumerName(rec.Inc, rec.Gen))
			if errors.Is(err, duct.ErrConflict) {
				continue
			}
			return fmt.Errorf("seek %q: %w", name, err)
		}
		p.applySub(rec, rev)
		if err := p.js.DeleteConsumer(ctx, stream, consumerName(old.Inc, old.Gen)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			p.log.Warn("pubsub: seek: delete old consumer", "subscription", name, "err", err)
		}
		return nil
	}
	return fmt.Errorf("seek %q: changed concurrently, try again: %w", name, duct.ErrConflict)
}
