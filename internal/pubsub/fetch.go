package pubsub

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/duct-dev/duct"
)

// A fetch is one pull request to a subscription's consumer. Pull
// requests are sent by hand rather than through nats.go's Fetch because
// Duct needs what the client does not combine: "no_wait" with "expires"
// (JetStream then answers as soon as it has delivered something, or
// waits up to expires for a first message) together with "max_bytes"
// (flow control by bytes). What arrives goes to the subscriber's ready
// queue, whoever asked for it: a pull that gave up meanwhile leaves it
// to the next, or to readyTTL.
type fetchReq struct {
	c        consumer
	n        int
	maxBytes int
	expires  time.Duration // 0: answer at once
	force    bool          // let one message larger than maxBytes through
	stop     chan struct{} // closed when no pull waits for it any more
	done     chan struct{}
}

// startFetchLocked sends a pull request for n messages, waiting up to
// expires for the first.
func (s *subscriber) startFetchLocked(n, maxBytes int, expires time.Duration, force bool) *fetchReq {
	f := &fetchReq{c: s.cons, n: n, maxBytes: maxBytes, expires: expires, force: force,
		stop: make(chan struct{}), done: make(chan struct{})}
	if !s.p.spawn(func() { s.runFetch(f) }) {
		close(f.done)
		return f
	}
	s.inflight += n // runFetch takes them off, under the lock held here
	if expires > 0 {
		s.fetches[f] = struct{}{}
	}
	return f
}

type fetchEnd uint8

const (
	fetchDone     fetchEnd = iota // satisfied, expired or nothing there
	fetchBusy                     // JetStream has other requests waiting for what it holds
	fetchTooBig                   // the next message is larger than max_bytes
	fetchConsumer                 // the consumer is gone
)

func (s *subscriber) runFetch(f *fetchReq) {
	defer close(f.done)
	got, end := s.pull(f)
	if end == fetchTooBig && got == 0 {
		if f.force {
			// A message larger than the whole byte budget would block the
			// stream forever: flow control lets one through when nothing
			// else is out.
			g := *f
			g.n, g.maxBytes, g.expires = 1, 0, 0
			n, _ := s.pull(&g)
			got += n
		} else {
			// Wait for the stream to settle something before asking
			// again with this budget.
			s.mu.Lock()
			s.tooBig = max(s.tooBig, f.maxBytes)
			s.mu.Unlock()
		}
	}
	if end == fetchBusy {
		// Let the waiting requests drain before asking again.
		select {
		case <-time.After(25 * time.Millisecond):
		case <-s.p.ctx.Done():
		}
	}
	if end == fetchConsumer {
		// Its topic was deleted, or a seek replaced it and the new record
		// is on its way: check, then give the watch a moment.
		s.p.log.Debug("pubsub: consumer gone", "subscription", s.name, "consumer", f.c.name)
		s.p.recheck(s)
		select {
		case <-time.After(time.Second):
		case <-s.p.ctx.Done():
		}
	}
	s.mu.Lock()
	s.inflight -= f.n - got
	delete(s.fetches, f)
	s.broadcastLocked()
	s.mu.Unlock()
}

// stopFetchesLocked ends the pull requests waiting for messages when no
// pull waits for them any more: what they would bring would only sit in
// the ready queue until readyTTL, away from other nodes.
func (s *subscriber) stopFetchesLocked() {
	for f := range s.fetches {
		close(f.stop)
		delete(s.fetches, f)
	}
}

// pull sends one pull request and takes in what it brings, in bursts:
// what has arrived together is accepted under one lock, so a waiting
// pull wakes to a full batch rather than the first message.
func (s *subscriber) pull(f *fetchReq) (int, fetchEnd) {
	nc := s.p.nc
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, f.n+16)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		s.p.log.Warn("pubsub: pull", "subscription", s.name, "err", err)
		return 0, fetchDone
	}
	defer func() { _ = sub.Unsubscribe() }()
	req := []byte(`{"batch":`)
	req = appendInt(req, int64(f.n))
	req = append(req, `,"no_wait":true`...)
	if f.maxBytes > 0 {
		req = append(req, `,"max_bytes":`...)
		req = appendInt(req, int64(f.maxBytes))
	}
	wait := 2 * time.Second
	if f.expires > 0 {
		req = append(req, `,"expires":`...)
		req = appendInt(req, f.expires.Nanoseconds())
		wait += f.expires
	}
	req = append(req, '}')
	if err := nc.PublishRequest(f.c.next, inbox, req); err != nil {
		s.p.log.Warn("pubsub: pull", "subscription", s.name, "err", err)
		return 0, fetchDone
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	got := 0
	burst := make([]*nats.Msg, 0, min(f.n, 256))
	for got < f.n {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-f.stop:
			// Nobody waits any more: stop here (unsubscribing tells
			// JetStream) and keep what already arrived.
			for {
				select {
				case m := <-ch:
					if !isStatus(m) {
						got++
						s.deliver(f.c, []*nats.Msg{m})
					}
				default:
					return got, fetchDone
				}
			}
		case <-timer.C:
			return got, fetchDone
		case <-s.p.ctx.Done():
			return got, fetchDone
		}
		burst = burst[:0]
		end, ended := fetchDone, false
		for m != nil {
			if isStatus(m) {
				end, ended = s.status(m)
				if ended {
					break
				}
			} else {
				burst = append(burst, m)
			}
			m = nil
			if got+len(burst) < f.n {
				select {
				case m = <-ch:
				default:
				}
			}
		}
		got += len(burst)
		if len(burst) > 0 {
			s.deliver(f.c, burst)
		}
		if ended {
			return got, end
		}
	}
	return got, fetchDone
}

func isStatus(m *nats.Msg) bool {
	return len(m.Data) == 0 && m.Header != nil && m.Header.Get("Status") != ""
}

// status reads a status message of a pull request: whether it ends the
// request, and how.
func (s *subscriber) status(m *nats.Msg) (fetchEnd, bool) {
	code, desc := m.Header.Get("Status"), strings.ToLower(m.Header.Get("Description"))
	switch {
	case code == "100":
		return fetchDone, false // heartbeat
	case code == "404" || code == "408" && !strings.Contains(desc, "pending"):
		return fetchDone, true
	case code == "408", code == "409" && strings.Contains(desc, "maxwaiting"):
		return fetchBusy, true
	case code == "409" && strings.Contains(desc, "maxbytes"):
		return fetchTooBig, true
	case code == "409" && strings.Contains(desc, "deleted"), code == "503":
		return fetchConsumer, true
	}
	s.p.log.Warn("pubsub: pull", "subscription", s.name, "status", code, "description", desc)
	return fetchDone, true
}

// recheck reads a subscription whose consumer is missing and detaches it
// if its topic is gone.
func (p *Broker) recheck(s *subscriber) {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	rec, rev, err := p.subRec(ctx, s.name)
	switch {
	case errors.Is(err, duct.ErrNotFound):
		p.dropSub(s.name, math.MaxUint64)
	case err != nil:
		return
	case rec.detached():
		s.mu.Lock()
		if rev >= s.rev {
			s.detachLocked()
		}
		s.mu.Unlock()
	default:
		s.update(rec, rev)
	}
}

// deliver takes in fetched messages.
func (s *subscriber) deliver(c consumer, ms []*nats.Msg) {
	var o ops
	s.mu.Lock()
	s.inflight -= len(ms)
	s.tooBig = 0
	now := s.p.now()
	for _, m := range ms {
		s.acceptLocked(c, m, now, &o)
	}
	s.armLocked(now)
	s.broadcastLocked()
	s.mu.Unlock()
	s.run(o)
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }
