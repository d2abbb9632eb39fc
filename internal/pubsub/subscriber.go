package pubsub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/duct-dev/duct"
)

// subscriber is one subscription's delivery on this node: it fetches
// from the durable consumer on demand, filters, dead-letters, keeps
// ordering keys in order, and leases what it hands out (lease.go). Every
// node that serves a subscription has one; they share the consumer, so
// JetStream spreads messages among them.
type subscriber struct {
	p    *Broker
	name string

	mu       sync.Mutex // guards every field below
	rec      subRecord
	rev      uint64
	filter   Filter
	cons     consumer
	gone     bool // deleted, or the broker closed
	leases   leases
	ready    []*lease               // fetched and deliverable, oldest first; stale entries are skipped
	order    *orderGate             // nil without ordering
	demand   int                    // messages wanted by waiting pulls
	inflight int                    // messages asked of JetStream, not yet arrived
	tooBig   int                    // a byte budget the next message did not fit in
	fetches  map[*fetchReq]struct{} // waiting pull requests in flight
	changed  chan struct{}
	timer    *time.Timer
	timerAt  time.Time
	pushStop context.CancelFunc
}

// consumer is where a subscriber's messages come from; a zero name means
// none (a detached subscription).
type consumer struct {
	gen     uint64
	name    string
	next    string // subject of pull requests
	ackPre  string // prefix of ack subjects
	ackWait time.Duration
}

func consumerOf(rec subRecord) consumer {
	if rec.detached() {
		return consumer{gen: rec.Gen}
	}
	stream, name := streamName(rec.TopicInc), consumerName(rec.Inc, rec.Gen)
	return consumer{
		gen: rec.Gen, name: name,
		next:    "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + name,
		ackPre:  "$JS.ACK." + stream + "." + name + ".",
		ackWait: rec.AckDeadline + jsGrace,
	}
}

func newSubscriber(p *Broker, rec subRecord, rev uint64) *subscriber {
	s := &subscriber{p: p, name: rec.Name, rec: rec, rev: rev, cons: consumerOf(rec), leases: newLeases(),
		changed: make(chan struct{}), fetches: map[*fetchReq]struct{}{}}
	s.filter, _ = ParseFilter(rec.Filter) // validated when stored
	if rec.Ordering {
		s.order = newOrderGate()
	}
	return s
}

// subscriber returns the loaded subscription name, loading it if need be.
func (p *Broker) subscriber(ctx context.Context, name string) (*subscriber, error) {
	p.mu.Lock()
	s, closed := p.subs[name], p.closed
	p.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("subscription %q: %w", name, duct.ErrShuttingDown)
	}
	if s != nil {
		return s, nil
	}
	rec, rev, err := p.subRec(ctx, name)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if s = p.subs[name]; s != nil || p.closed {
		p.mu.Unlock()
		if s == nil {
			return nil, fmt.Errorf("subscription %q: %w", name, duct.ErrShuttingDown)
		}
		s.update(rec, rev)
		return s, nil
	}
	s = newSubscriber(p, rec, rev)
	p.subs[name] = s
	p.mu.Unlock()
	s.start()
	return s, nil
}

func (s *subscriber) revision() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev
}

func (s *subscriber) start() {
	s.mu.Lock()
	start := s.pushWantedLocked()
	s.mu.Unlock()
	if start {
		s.startPush()
	}
}

func (s *subscriber) pushWantedLocked() bool {
	return !s.gone && s.rec.Push != nil && s.cons.name != "" && s.pushStop == nil
}

// update applies a newer record. A new consumer generation (a seek) or a
// detached topic voids what this node holds: the old consumer is gone.
func (s *subscriber) update(rec subRecord, rev uint64) {
	s.mu.Lock()
	if s.gone || rev <= s.rev {
		s.mu.Unlock()
		return
	}
	reset := rec.Gen != s.rec.Gen || rec.TopicInc != s.rec.TopicInc || rec.detached() != s.rec.detached()
	s.rec, s.rev = rec, rev
	if reset {
		s.resetLocked()
		s.cons = consumerOf(rec)
	} else {
		s.cons.ackWait = rec.AckDeadline + jsGrace
	}
	var stop context.CancelFunc
	if (rec.Push == nil || s.cons.name == "") && s.pushStop != nil {
		stop, s.pushStop = s.pushStop, nil
	}
	start := s.pushWantedLocked()
	s.broadcastLocked()
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	if start {
		s.startPush()
	}
}

// resetLocked forgets every message held: their consumer is gone.
func (s *subscriber) resetLocked() {
	for _, l := range s.leases.bySeq {
		s.unleaseLocked(l)
	}
	s.leases = newLeases()
	s.ready = nil
	if s.order != nil {
		s.order = newOrderGate()
	}
}

// remove ends a deleted subscription's deliveries on this node.
func (s *subscriber) remove() {
	s.mu.Lock()
	s.gone = true
	s.resetLocked()
	s.stopFetchesLocked()
	stop := s.pushStop
	s.pushStop = nil
	if s.timer != nil {
		s.timer.Stop()
	}
	s.broadcastLocked()
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// shutdown hands everything this node holds back to JetStream, for
// prompt redelivery elsewhere or after a restart. A NAK with a delay
// (of a nanosecond) is used because JetStream stores its new deadline,
// where a plain NAK only queues the message in memory; the server's
// answers are awaited, so the NAKs are in before the server stops.
func (s *subscriber) shutdown() {
	var o ops
	s.mu.Lock()
	for _, l := range s.leases.bySeq {
		o.nak(s.cons, l.id, time.Nanosecond)
		s.unleaseLocked(l)
	}
	s.leases = newLeases()
	s.ready = nil
	s.gone = true
	s.stopFetchesLocked()
	if s.timer != nil {
		s.timer.Stop()
	}
	stop := s.pushStop
	s.pushStop = nil
	s.broadcastLocked()
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.runConfirmed(o.js, 5*time.Second)
}

// runConfirmed sends JetStream ops as requests and waits (up to timeout)
// until the server has answered them all.
func (s *subscriber) runConfirmed(js []jsOp, timeout time.Duration) {
	if len(js) == 0 {
		return
	}
	nc := s.p.nc
	inbox := nc.NewInbox()
	replies := make(chan *nats.Msg, len(js))
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		s.p.log.Warn("pubsub: hand back messages", "subscription", s.name, "err", err)
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	for _, op := range js {
		if err := nc.PublishRequest(op.subj, inbox, op.body); err != nil {
			s.p.log.Warn("pubsub: hand back messages", "subscription", s.name, "err", err)
			return
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for range js {
		select {
		case <-replies:
		case <-timer.C:
			s.p.log.Warn("pubsub: hand back messages: no answer", "subscription", s.name)
			return
		}
	}
}

// broadcastLocked wakes everyone waiting for a change: new messages, a
// settled lease (flow control), a new config.
func (s *subscriber) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// ops are what a change under the lock asks of JetStream and of the
// dead-letter topic; run does them after unlocking.
type ops struct {
	js   []jsOp
	dead []deadLetter
}

type jsOp struct {
	subj string
	body []byte
}

var (
	ackBody  = []byte("+ACK")
	nakBody  = []byte("-NAK")
	wpiBody  = []byte("+WPI")
	termBody = []byte("+TERM")
)

func (o *ops) ack(c consumer, id ackID) {
	if c.name != "" {
		o.js = append(o.js, jsOp{ackSubject(c.ackPre, id), ackBody})
	}
}

// nak returns a message to JetStream, redelivered after delay.
func (o *ops) nak(c consumer, id ackID, delay time.Duration) {
	if c.name == "" {
		return
	}
	body := nakBody
	if delay > 0 {
		body = fmt.Appendf(nil, `-NAK {"delay":%d}`, delay.Nanoseconds())
	}
	o.js = append(o.js, jsOp{ackSubject(c.ackPre, id), body})
}

func (s *subscriber) run(o ops) {
	for _, op := range o.js {
		if err := s.p.nc.Publish(op.subj, op.body); err != nil {
			s.p.log.Warn("pubsub: settle message", "subscription", s.name, "err", err)
		}
	}
	for _, d := range o.dead {
		if !s.p.spawn(func() { s.p.deadLetter(s, d) }) {
			_ = s.p.nc.Publish(ackSubject(d.cons.ackPre, d.id), nakBody) // stopping: try again later
		}
	}
}
