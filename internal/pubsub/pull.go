package pubsub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/duct-dev/duct"
)

// Pull returns up to max messages leased for the subscription's ack
// deadline. With wait it blocks until at least one is available or ctx
// ends (then it returns ctx's error); without, it returns what one
// request to JetStream brings, possibly nothing.
func (p *Broker) Pull(ctx context.Context, sub string, max int, wait bool) ([]Received, error) {
	if max < 1 || max > MaxPullMessages {
		return nil, duct.Invalid("max messages", "%d: want 1 to %d", max, MaxPullMessages)
	}
	s, err := p.subscriber(ctx, sub)
	if err != nil {
		return nil, err
	}
	return s.take(ctx, max, 0, nil, 0, wait)
}

// parseAckIDs decodes ack ids, keeping those of the subscription's
// current consumer; ids of an earlier consumer (before a seek or a
// re-creation) are dropped silently, malformed ones are reported after
// the others are applied.
func (s *subscriber) parseAckIDs(ackIDs []string) ([]ackID, error) {
	s.mu.Lock()
	inc, gen := s.rec.Inc, s.cons.gen
	s.mu.Unlock()
	ids := make([]ackID, 0, len(ackIDs))
	var bad error
	newer := false
	for _, raw := range ackIDs {
		id, err := parseAckID(raw)
		if err != nil {
			bad = err
			continue
		}
		newer = newer || id.inc == inc && id.gen > gen
		if id.inc == inc && id.gen == gen {
			ids = append(ids, id)
		}
	}
	if newer {
		// Another node seeked and handed these out before this node
		// heard of it: catch up, then take them.
		s.p.recheck(s)
		s.mu.Lock()
		gen = s.cons.gen
		s.mu.Unlock()
		ids = ids[:0]
		for _, raw := range ackIDs {
			if id, err := parseAckID(raw); err == nil && id.inc == inc && id.gen == gen {
				ids = append(ids, id)
			}
		}
	}
	return ids, bad
}

// Acknowledge settles messages for good. The ack goes to JetStream
// whether or not this node delivered the message; the call returns once
// the server has it.
func (p *Broker) Acknowledge(ctx context.Context, sub string, ackIDs []string) error {
	s, err := p.subscriber(ctx, sub)
	if err != nil {
		return err
	}
	ids, bad := s.parseAckIDs(ackIDs)
	var o ops
	s.mu.Lock()
	now := p.now()
	released := false
	for _, id := range ids {
		if l := s.leases.get(id.sseq); l != nil {
			s.ackLocked(l, now)
			released = true
		} else if s.order != nil {
			if key, ok := s.order.awayKey(id.sseq); ok {
				if next := s.order.done(key, id.sseq); next != nil {
					s.releaseLocked(next, now)
				}
				released = true
			}
		}
		o.ack(s.cons, id)
	}
	if released {
		s.armLocked(now)
		s.broadcastLocked()
	}
	s.mu.Unlock()
	s.run(o)
	if len(o.js) > 0 {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := p.nc.FlushWithContext(fctx); err != nil {
			return fmt.Errorf("acknowledge on %q: %w", sub, errors.Join(err, duct.ErrUnavailable))
		}
	}
	return bad
}

// ModifyAckDeadline sets the remaining lease of messages to d; 0 is a
// nack: the message goes back after the retry policy's backoff (or to
// the dead-letter topic after its last attempt). Leases that live on
// another node (or died with one) are changed in JetStream directly.
func (p *Broker) ModifyAckDeadline(ctx context.Context, sub string, ackIDs []string, d time.Duration) error {
	if d < 0 || d > MaxAckDeadline {
		return duct.Invalid("ack deadline", "%s: want 0 to %s", d, MaxAckDeadline)
	}
	s, err := p.subscriber(ctx, sub)
	if err != nil {
		return err
	}
	ids, bad := s.parseAckIDs(ackIDs)
	var o ops
	s.mu.Lock()
	now := p.now()
	changed := false
	for _, id := range ids {
		l := s.leases.get(id.sseq)
		switch {
		case l != nil && l.state == stateLeased && d == 0:
			s.failLocked(l, now, &o)
			changed = true
		case l != nil && l.state == stateLeased:
			l.deadline = now.Add(d)
			s.leases.reschedule(l)
		case l != nil:
			// Fetched again meanwhile, and not handed out: nothing to do.
		case d == 0:
			// Not here: JetStream holds the lease (another node, or a
			// node that died). A message past its last attempt comes back
			// at once and is dead-lettered when fetched.
			delay := retryDelay(&s.rec.Subscription, int(id.count))
			if dl := s.rec.DeadLetter; dl != nil && id.count >= uint64(dl.MaxAttempts) {
				delay = 0
			}
			o.nak(s.cons, id, delay)
		default:
			o.nak(s.cons, id, d)
		}
	}
	s.armLocked(now)
	if changed {
		s.broadcastLocked()
	}
	s.mu.Unlock()
	s.run(o)
	return bad
}
