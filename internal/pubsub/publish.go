package pubsub

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/duct-dev/duct"
)

// Publishing. JetStream fsyncs every stored message when the server
// syncs always (Duct's default), which caps one-at-a-time publishing at
// the disk's sync rate. An atomic batch is fsynced once, but each one
// costs a staging store on the server (about as much as four single
// publishes on the development machine). So a topic's publisher
// stores each Publish request as one atomic batch, and while batches are
// in flight it queues further requests and stores them together in the
// next batch (whole requests, up to MaxPublishBatch messages): the more
// publishers, the bigger the batches. A lone request of one message, or
// a few such requests queued together, is published plainly.
const (
	pubInflight   = 4        // batches in flight per topic per node
	maxBatchBytes = 16 << 20 // coalescing stops at this many bytes
	rawBelow      = 4        // fewer single-message requests than this go one by one
	pubTimeout    = 30 * time.Second
)

type publisher struct {
	p       *Broker
	stream  string
	subject string

	mu      sync.Mutex // guards queue, queued and running
	queue   []*pubReq
	queued  int // messages in queue
	running int // goroutines storing batches
}

type pubReq struct {
	msgs  []*nats.Msg
	bytes int
	first uint64 // stream sequence of msgs[0], once stored
	err   error
	done  chan struct{}
}

// Publish stores msgs on the topic, durably (fsynced, as the server is
// configured) before it returns their ids: their stream sequences.
func (p *Broker) Publish(ctx context.Context, topic string, msgs []Message) ([]string, error) {
	if err := checkMessages(msgs); err != nil {
		return nil, fmt.Errorf("publish to %q: %w", topic, err)
	}
	return p.publish(ctx, topic, msgs)
}

// publish stores messages already checked (or made by the broker, like
// dead letters, which may carry more attributes than clients may).
func (p *Broker) publish(ctx context.Context, topic string, msgs []Message) ([]string, error) {
	ids, err := p.publishOnce(ctx, topic, msgs)
	if errors.Is(err, errStaleTopic) {
		// The cached topic was deleted, perhaps re-created: look again.
		ids, err = p.publishOnce(ctx, topic, msgs)
	}
	if errors.Is(err, errStaleTopic) {
		return nil, notFound("topic", topic)
	}
	return ids, err
}

var errStaleTopic = errors.New("stale topic")

func (p *Broker) publishOnce(ctx context.Context, topic string, msgs []Message) ([]string, error) {
	t, err := p.topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	pub := p.publisher(t)
	limit := p.nc.MaxPayload() - 512 // room for batch headers
	out := make([]*nats.Msg, len(msgs))
	total := 0
	for i := range msgs {
		data := encodeEnvelope(&msgs[i])
		if int64(len(data)) > limit {
			return nil, fmt.Errorf("publish to %q: message %d of %d bytes exceeds the NATS server's max_payload (%d; raise it to publish messages up to %d bytes): %w",
				topic, i, len(data), limit+512, MaxMessageSize, duct.ErrTooLarge)
		}
		out[i] = &nats.Msg{Subject: pub.subject, Data: data, Header: nats.Header{}}
		total += len(data)
	}
	first, err := pub.publish(ctx, out, total)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) {
			p.uncacheTopic(topic)
			return nil, errStaleTopic
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("publish to %q: %w", topic, errors.Join(err, duct.ErrUnavailable))
	}
	ids := make([]string, len(msgs))
	for i := range ids {
		ids[i] = strconv.FormatUint(first+uint64(i), 10)
	}
	return ids, nil
}

func (p *Broker) publisher(t topicRecord) *publisher {
	p.mu.Lock()
	defer p.mu.Unlock()
	pub := p.pubs[t.Inc]
	if pub == nil {
		pub = &publisher{p: p, stream: streamName(t.Inc), subject: subjectName(t.Inc)}
		p.pubs[t.Inc] = pub
	}
	return pub
}

// publish queues msgs and waits until they are stored. If ctx ends
// first the messages may still be stored.
func (pb *publisher) publish(ctx context.Context, msgs []*nats.Msg, bytes int) (uint64, error) {
	r := &pubReq{msgs: msgs, bytes: bytes, done: make(chan struct{})}
	pb.mu.Lock()
	pb.queue = append(pb.queue, r)
	pb.queued += len(msgs)
	// A second batch in flight overlaps sending with storing, worth it
	// for big batches; small requests wait for the running batch and
	// go together in the next one, which is cheaper than a batch each.
	start := pb.running == 0 || pb.running < pubInflight && pb.queued >= MaxPublishBatch/2
	if start {
		pb.running++
		if !pb.p.spawn(pb.run) {
			pb.running--
			pb.queue = pb.queue[:len(pb.queue)-1]
			pb.queued -= len(msgs)
			pb.mu.Unlock()
			return 0, duct.ErrShuttingDown
		}
	}
	pb.mu.Unlock()
	select {
	case <-r.done:
		return r.first, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run stores queued requests, batch after batch, until none is left.
func (pb *publisher) run() {
	for {
		pb.mu.Lock()
		if len(pb.queue) == 0 {
			pb.running--
			pb.mu.Unlock()
			return
		}
		n, msgs, bytes := 0, 0, 0
		for ; n < len(pb.queue); n++ {
			r := pb.queue[n]
			if n > 0 && (msgs+len(r.msgs) > MaxPublishBatch || bytes+r.bytes > maxBatchBytes) {
				break
			}
			msgs += len(r.msgs)
			bytes += r.bytes
		}
		batch := make([]*pubReq, n)
		copy(batch, pb.queue)
		pb.queue = append(pb.queue[:0], pb.queue[n:]...)
		pb.queued -= msgs
		pb.mu.Unlock()
		pb.commit(batch, msgs)
	}
}

func (pb *publisher) commit(batch []*pubReq, total int) {
	ctx, cancel := context.WithTimeout(pb.p.ctx, pubTimeout)
	defer cancel()
	singles := total < rawBelow
	for _, r := range batch {
		singles = singles && len(r.msgs) == 1
	}
	if singles {
		pb.commitEach(ctx, batch)
		return
	}
	all := make([]*nats.Msg, 0, total)
	for _, r := range batch {
		all = append(all, r.msgs...)
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, pb.p.js, all)
	if err == nil && (ack.Stream != pb.stream || ack.BatchSize != uint64(total) || ack.Sequence < uint64(total)) {
		err = fmt.Errorf("unexpected batch ack %+v", *ack)
	}
	seq := uint64(0)
	if err == nil {
		seq = ack.Sequence - uint64(total) + 1
	}
	for _, r := range batch {
		r.first, r.err = seq, err
		seq += uint64(len(r.msgs))
		close(r.done)
	}
}

// commitEach publishes single messages plainly, pipelined.
func (pb *publisher) commitEach(ctx context.Context, batch []*pubReq) {
	futures := make([]jetstream.PubAckFuture, len(batch))
	for i, r := range batch {
		futures[i], r.err = pb.p.js.PublishMsgAsync(r.msgs[0], jetstream.WithExpectStream(pb.stream))
	}
	for i, r := range batch {
		if f := futures[i]; r.err == nil {
			select {
			case ack := <-f.Ok():
				r.first = ack.Sequence
			case err := <-f.Err():
				r.err = err
			case <-ctx.Done():
				r.err = ctx.Err()
			}
		}
		close(r.done)
	}
}
