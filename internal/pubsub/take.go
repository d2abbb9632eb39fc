package pubsub

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/duct-dev/duct"
)

// Taking messages in from JetStream and handing them out to pulls,
// streams and pushes.

// replyInfo parses what JetStream's reply subject of a delivered message
// says: $JS.ACK.<stream>.<consumer>.<count>.<sseq>.<dseq>.<ts>.<pending>,
// or the longer form with a domain and an account hash in front.
func replyInfo(reply string) (count, sseq, dseq uint64, ts int64, ok bool) {
	tok := strings.Split(reply, ".")
	var off int
	switch {
	case len(tok) == 9:
		off = 4
	case len(tok) >= 11:
		off = 6
	default:
		return 0, 0, 0, 0, false
	}
	if tok[0] != "$JS" || tok[1] != "ACK" {
		return 0, 0, 0, 0, false
	}
	var err1, err2, err3, err4 error
	count, err1 = strconv.ParseUint(tok[off], 10, 64)
	sseq, err2 = strconv.ParseUint(tok[off+1], 10, 64)
	dseq, err3 = strconv.ParseUint(tok[off+2], 10, 64)
	ts, err4 = strconv.ParseInt(tok[off+3], 10, 64)
	return count, sseq, dseq, ts, errors.Join(err1, err2, err3, err4) == nil && sseq > 0
}

// acceptLocked takes in one message fetched from consumer c: it is
// skipped (acknowledged unseen) when it is before a seek, past retention
// or filtered out, dead-lettered when it used up its attempts, held
// when its ordering key has one out, and ready otherwise.
func (s *subscriber) acceptLocked(c consumer, m *nats.Msg, now time.Time, o *ops) {
	if c.gen != s.cons.gen || c.name != s.cons.name {
		return // a consumer that is gone: leave it alone
	}
	count, sseq, dseq, ts, ok := replyInfo(m.Reply)
	if !ok {
		s.p.log.Warn("pubsub: delivery without JetStream metadata", "subscription", s.name, "reply", m.Reply)
		return
	}
	id := ackID{inc: s.rec.Inc, gen: c.gen, sseq: sseq, dseq: dseq, count: count}
	if s.gone {
		o.nak(c, id, time.Nanosecond) // arrived as the node stops: back at once
		return
	}
	if old := s.leases.get(sseq); old != nil {
		// JetStream redelivered what this node still had (it lost a
		// deadline push): the new delivery replaces the old.
		s.unleaseLocked(old)
	}
	var msg Message
	if err := decodeEnvelope(m.Data, &msg); err != nil {
		s.p.log.Error("pubsub: dropping malformed stored message", "subscription", s.name, "seq", sseq)
		o.js = append(o.js, jsOp{ackSubject(c.ackPre, id), termBody})
		return
	}
	msg.ID = strconv.FormatUint(sseq, 10)
	msg.PublishTime = time.Unix(0, ts).UTC()
	r := &s.rec
	if (!r.SeekTime.IsZero() && msg.PublishTime.Before(r.SeekTime)) ||
		(r.Retention > 0 && now.Sub(msg.PublishTime) > r.Retention) || !s.filter.Match(msg.Attributes) {
		o.ack(c, id)
		return
	}
	if dl := r.DeadLetter; dl != nil && count > uint64(dl.MaxAttempts) {
		o.dead = append(o.dead, deadLetter{id: id, cons: c, msg: msg, attempts: count - 1})
		if s.order != nil {
			if next := s.order.done(msg.OrderingKey, sseq); next != nil {
				s.releaseLocked(next, now)
			}
		}
		return
	}
	l := &lease{id: id, msg: msg, size: len(m.Data), js: now.Add(c.ackWait), index: -1}
	if s.order != nil && !s.order.admit(l) {
		l.state = stateHeld
	} else {
		l.state = stateReady
		l.deadline = now.Add(readyTTL)
		s.ready = append(s.ready, l)
	}
	s.leases.add(l)
}

// takeLocked leases up to want ready messages (and up to maxBytes, if
// set, though always one when allowFirst) for d. blocked reports a ready
// message that did not fit.
func (s *subscriber) takeLocked(want int, maxBytes int64, allowFirst bool, owner *stream, d time.Duration, now time.Time) (out []Received, blocked bool) {
	var bytes int64
	i := 0
	for ; i < len(s.ready) && len(out) < want; i++ {
		l := s.ready[i]
		if l.index < 0 || l.state != stateReady {
			continue
		}
		if maxBytes > 0 && bytes+int64(l.size) > maxBytes && !(allowFirst && len(out) == 0) {
			blocked = true
			break
		}
		l.state, l.owner, l.deadline = stateLeased, owner, now.Add(d)
		s.leases.reschedule(l)
		bytes += int64(l.size)
		if owner != nil {
			owner.outMsgs++
			owner.outBytes += int64(l.size)
		}
		attempt := 0
		if s.rec.DeadLetter != nil {
			attempt = int(l.id.count)
		}
		out = append(out, Received{AckID: l.id.String(), Message: l.msg, DeliveryAttempt: attempt})
	}
	s.ready = append(s.ready[:0], s.ready[i:]...)
	return out, blocked
}

// take hands out up to want messages leased for d (0: the
// subscription's ack deadline). With wait it waits for at least one,
// fetching as needed, until ctx ends; without, it fetches once.
func (s *subscriber) take(ctx context.Context, want int, maxBytes int64, owner *stream, d time.Duration, wait bool) ([]Received, error) {
	var fetched *fetchReq
	for {
		s.mu.Lock()
		if s.gone {
			s.mu.Unlock()
			return nil, s.goneErr()
		}
		if owner != nil && owner.closed {
			s.mu.Unlock()
			return nil, ErrStreamClosed
		}
		now := s.p.now()
		lease := d
		if lease == 0 {
			lease = s.rec.AckDeadline
		}
		allowFirst := owner == nil || owner.outMsgs == 0
		out, blocked := s.takeLocked(want, maxBytes, allowFirst, owner, lease, now)
		if len(out) > 0 {
			s.armLocked(now)
			s.mu.Unlock()
			return out, nil
		}
		// Fetch unless what is there, or next, does not fit the budget:
		// then wait until the stream settles something.
		canFetch := s.cons.name != "" && (s.order == nil || s.order.held < maxHeld) && !blocked &&
			(allowFirst || maxBytes == 0 || int(maxBytes) > s.tooBig)
		var ch <-chan struct{}
		waiting := false
		switch {
		case !wait && (fetched != nil || !canFetch):
			s.mu.Unlock()
			return nil, nil
		case !wait:
			fetched = s.startFetchLocked(want, int(maxBytes), 0, allowFirst)
			ch = fetched.done
		default:
			s.demand += want
			waiting = true
			if expires := fetchExpiry(ctx); canFetch && expires > 0 && s.inflight < s.demand {
				s.startFetchLocked(min(s.demand-s.inflight, MaxPullMessages), int(maxBytes), expires, allowFirst)
			}
			ch = s.changed
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		if waiting {
			s.mu.Lock()
			s.demand -= want
			if s.demand == 0 && ctx.Err() != nil {
				s.stopFetchesLocked()
			}
			s.mu.Unlock()
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// fetchExpiry is how long a pull request made for ctx waits for a
// first message: up to fetchWait, and ending a little before ctx does,
// so that little arrives after its caller left. Zero: too late to ask.
func fetchExpiry(ctx context.Context) time.Duration {
	d := fetchWait
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)-5*time.Millisecond)
	}
	if d < 10*time.Millisecond {
		return 0
	}
	return d
}

// detachLocked stops deliveries of a subscription whose topic is gone.
func (s *subscriber) detachLocked() {
	if s.rec.detached() {
		return
	}
	s.rec.Topic = DeletedTopic
	s.resetLocked()
	s.cons = consumerOf(s.rec)
	if s.pushStop != nil {
		s.pushStop()
		s.pushStop = nil
	}
	s.broadcastLocked()
}

func (s *subscriber) goneErr() error {
	s.p.mu.Lock()
	closed := s.p.closed
	s.p.mu.Unlock()
	if closed {
		return fmt.Errorf("subscription %q: %w", s.name, duct.ErrShuttingDown)
	}
	return notFound("subscription", s.name)
}
