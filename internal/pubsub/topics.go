package pubsub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/duct-dev/duct"
)

// maxStoredMessage bounds one stored message (MaxMsgSize of a topic's
// stream): the largest message plus its envelope.
const maxStoredMessage = MaxMessageSize + envelopeOverhead

// casRetries bounds read-modify-write loops that lose to concurrent
// writers.
const casRetries = 5

func notFound(kind, name string) error {
	return fmt.Errorf("%s %q: %w", kind, name, duct.ErrNotFound)
}

// topicStream is the JetStream stream of a topic: file storage (fsynced
// as the server is configured), messages kept for the retention, atomic
// batches allowed so a Publish request costs one fsync.
func (p *Broker) topicStream(rec topicRecord) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               streamName(rec.Inc),
		Description:        "Duct pub/sub topic " + rec.Name,
		Subjects:           []string{subjectName(rec.Inc)},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		MaxAge:             rec.Retention,
		MaxMsgSize:         int32(maxStoredMessage),
		Replicas:           p.replicas,
		AllowAtomicPublish: true,
		Metadata:           map[string]string{"duct.topic": rec.Name},
	}
}

// CreateTopic creates a topic and its stream.
func (p *Broker) CreateTopic(ctx context.Context, t Topic) (Topic, error) {
	t, err := normTopic(t)
	if err != nil {
		return Topic{}, err
	}
	key := kvKey(t.Name)
	if _, err := p.topicsKV.Get(ctx, key); err == nil {
		return Topic{}, fmt.Errorf("topic %q: %w", t.Name, duct.ErrConflict)
	}
	t.CreatedAt = p.now().UTC()
	rec := topicRecord{Topic: t, Inc: newInc()}
	// The stream first: a topic visible in the bucket always has one. A
	// crash between the two leaves a stream nobody names, harmless.
	if _, err := p.js.CreateStream(ctx, p.topicStream(rec)); err != nil {
		return Topic{}, fmt.Errorf("create topic %q: stream: %w", t.Name, err)
	}
	rev, err := putJSON(ctx, p.topicsKV, key, 0, rec)
	if err != nil {
		_ = p.js.DeleteStream(context.WithoutCancel(ctx), streamName(rec.Inc))
		return Topic{}, fmt.Errorf("create topic %q: %w", t.Name, err)
	}
	p.cacheTopic(rec, rev)
	return t, nil
}

func (p *Broker) cacheTopic(rec topicRecord, rev uint64) {
	p.mu.Lock()
	if c, ok := p.topics[rec.Name]; !ok || c.rev < rev {
		p.topics[rec.Name] = topicEntry{rec: rec, rev: rev}
	}
	p.mu.Unlock()
}

func (p *Broker) uncacheTopic(name string) {
	p.mu.Lock()
	delete(p.topics, name)
	p.mu.Unlock()
}

// topic returns a topic's record from the cache, or from the bucket.
func (p *Broker) topic(ctx context.Context, name string) (topicRecord, error) {
	p.mu.Lock()
	c, ok := p.topics[name]
	p.mu.Unlock()
	if ok {
		return c.rec, nil
	}
	if checkName("topic", name) != nil {
		return topicRecord{}, notFound("topic", name)
	}
	rec, rev, err := getJSON[topicRecord](ctx, p.topicsKV, kvKey(name))
	if errors.Is(err, duct.ErrNotFound) {
		return rec, notFound("topic", name)
	}
	if err != nil {
		return rec, fmt.Errorf("topic %q: %w", name, err)
	}
	p.cacheTopic(rec, rev)
	return rec, nil
}

// GetTopic reads a topic from the bucket.
func (p *Broker) GetTopic(ctx context.Context, name string) (Topic, error) {
	if checkName("topic", name) != nil {
		return Topic{}, notFound("topic", name)
	}
	rec, rev, err := getJSON[topicRecord](ctx, p.topicsKV, kvKey(name))
	if errors.Is(err, duct.ErrNotFound) {
		return Topic{}, notFound("topic", name)
	}
	if err != nil {
		return Topic{}, fmt.Errorf("topic %q: %w", name, err)
	}
	p.cacheTopic(rec, rev)
	return rec.Topic, nil
}

// UpdateTopic sets a topic's labels and retention.
func (p *Broker) UpdateTopic(ctx context.Context, t Topic) (Topic, error) {
	want, err := normTopic(t)
	if err != nil {
		return Topic{}, err
	}
	for range casRetries {
		rec, rev, err := getJSON[topicRecord](ctx, p.topicsKV, kvKey(t.Name))
		if errors.Is(err, duct.ErrNotFound) {
			return Topic{}, notFound("topic", t.Name)
		}
		if err != nil {
			return Topic{}, fmt.Errorf("update topic %q: %w", t.Name, err)
		}
		retentionChanged := rec.Retention != want.Retention
		rec.Labels, rec.Retention = want.Labels, want.Retention
		if retentionChanged {
			if _, err := p.js.UpdateStream(ctx, p.topicStream(rec)); err != nil {
				return Topic{}, fmt.Errorf("update topic %q: stream: %w", t.Name, err)
			}
		}
		rev, err = putJSON(ctx, p.topicsKV, kvKey(t.Name), rev, rec)
		if errors.Is(err, duct.ErrConflict) {
			continue
		}
		if err != nil {
			return Topic{}, fmt.Errorf("update topic %q: %w", t.Name, err)
		}
		p.cacheTopic(rec, rev)
		return rec.Topic, nil
	}
	return Topic{}, fmt.Errorf("update topic %q: changed concurrently, try again: %w", t.Name, duct.ErrConflict)
}

// ListTopics lists every topic, sorted by name.
func (p *Broker) ListTopics(ctx context.Context) ([]Topic, error) {
	recs, err := listJSON[topicRecord](ctx, p.topicsKV)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	out := make([]Topic, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Topic)
	}
	slices.SortFunc(out, func(a, b Topic) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteTopic removes a topic and its messages. Its subscriptions remain,
// detached: their topic becomes DeletedTopic and they deliver nothing
// more, even if a topic of the same name is created again.
func (p *Broker) DeleteTopic(ctx context.Context, name string) error {
	if checkName("topic", name) != nil {
		return notFound("topic", name)
	}
	key := kvKey(name)
	var rec topicRecord
	for i := 0; ; i++ {
		r, rev, err := getJSON[topicRecord](ctx, p.topicsKV, key)
		if errors.Is(err, duct.ErrNotFound) {
			return notFound("topic", name)
		}
		if err != nil {
			return fmt.Errorf("delete topic %q: %w", name, err)
		}
		err = p.topicsKV.Delete(ctx, key, jetstream.LastRevision(rev))
		if err == nil {
			rec = r
			break
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) || i == casRetries {
			return fmt.Errorf("delete topic %q: %w", name, err)
		}
	}
	p.uncacheTopic(name)
	p.mu.Lock()
	delete(p.pubs, rec.Inc)
	p.mu.Unlock()
	if err := p.js.DeleteStream(ctx, streamName(rec.Inc)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		p.log.Warn("pubsub: delete topic stream", "topic", name, "err", err)
	}
	return p.detachSubs(ctx, rec)
}

// detachSubs marks the subscriptions of a deleted topic detached.
func (p *Broker) detachSubs(ctx context.Context, t topicRecord) error {
	recs, err := listJSON[subRecord](ctx, p.subsKV)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("delete topic %q: detach subscriptions: %w", t.Name, err)
	}
	for _, r := range recs {
		if r.Topic != t.Name || r.TopicInc != t.Inc {
			continue
		}
		if err := p.detach(ctx, r.Name, t.Inc); err != nil {
			return fmt.Errorf("delete topic %q: detach subscription %q: %w", t.Name, r.Name, err)
		}
	}
	return nil
}

func (p *Broker) detach(ctx context.Context, sub string, topicInc uint64) error {
	for range casRetries {
		rec, rev, err := getJSON[subRecord](ctx, p.subsKV, kvKey(sub))
		if errors.Is(err, duct.ErrNotFound) || err == nil && rec.TopicInc != topicInc {
			return nil
		}
		if err != nil {
			return err
		}
		rec.Topic = DeletedTopic
		rev, err = putJSON(ctx, p.subsKV, kvKey(sub), rev, rec)
		if errors.Is(err, duct.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		p.applySub(rec, rev)
		return nil
	}
	return duct.ErrConflict
}
