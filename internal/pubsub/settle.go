package pubsub

import "time"

// The lease manager: how a message this node holds is settled (acked,
// nacked, lapsed, handed back) and the timer that acts when a lease or
// JetStream's own deadline comes due. All of it runs under the
// subscriber's mutex; what it asks of JetStream goes out after.

// unleaseLocked takes l out of the table, out of its ordering key's
// queue if held, and out of its stream's flow control.
func (s *subscriber) unleaseLocked(l *lease) {
	s.leases.remove(l)
	if l.state == stateHeld && s.order != nil {
		s.order.drop(l)
	}
	if st := l.owner; st != nil {
		st.outMsgs--
		st.outBytes -= int64(l.size)
		l.owner = nil
	}
}

// releaseLocked makes a message that its ordering key held deliverable.
func (s *subscriber) releaseLocked(l *lease, now time.Time) {
	l.state = stateReady
	l.deadline = now.Add(readyTTL)
	s.leases.reschedule(l)
	s.ready = append(s.ready, l)
}

// ackLocked settles l for good.
func (s *subscriber) ackLocked(l *lease, now time.Time) {
	held := l.state == stateHeld
	s.unleaseLocked(l)
	if s.order != nil && !held {
		if next := s.order.done(l.msg.OrderingKey, l.id.sseq); next != nil {
			s.releaseLocked(next, now)
		}
	}
}

// failLocked settles a nacked or lapsed delivery: dead-letter it after
// the last allowed attempt, otherwise back to JetStream after the retry
// policy's backoff. Its ordering key waits for it.
func (s *subscriber) failLocked(l *lease, now time.Time, o *ops) {
	s.unleaseLocked(l)
	if dl := s.rec.DeadLetter; dl != nil && l.id.count >= uint64(dl.MaxAttempts) {
		o.dead = append(o.dead, deadLetter{id: l.id, cons: s.cons, msg: l.msg, attempts: l.id.count})
		if s.order != nil {
			if next := s.order.done(l.msg.OrderingKey, l.id.sseq); next != nil {
				s.releaseLocked(next, now)
			}
		}
		return
	}
	delay := retryDelay(&s.rec.Subscription, int(l.id.count))
	o.nak(s.cons, l.id, delay)
	if s.order != nil {
		s.order.wentAway(l.msg.OrderingKey, l.id.sseq, now.Add(delay+s.cons.ackWait+headAwayOK))
	}
}

// backLocked returns a message to JetStream at once: nobody took it, or
// its stream closed, or the node stops.
func (s *subscriber) backLocked(l *lease, now time.Time, o *ops) {
	s.unleaseLocked(l)
	o.nak(s.cons, l.id, 0)
	if s.order != nil && l.state != stateHeld {
		s.order.wentAway(l.msg.OrderingKey, l.id.sseq, now.Add(s.cons.ackWait+headAwayOK))
	}
}

// tick is the lease manager: it runs when the earliest lease is due.
func (s *subscriber) tick() {
	var o ops
	s.mu.Lock()
	s.timerAt = time.Time{}
	if s.gone {
		s.mu.Unlock()
		return
	}
	now := s.p.now()
	woke := false
	for l := s.leases.next(); l != nil && !l.due.After(now); l = s.leases.next() {
		switch {
		case l.state == stateReady && !now.Before(l.deadline):
			s.backLocked(l, now, &o)
			woke = true
		case l.state == stateLeased && !now.Before(l.deadline):
			s.failLocked(l, now, &o)
			woke = true
		case l.state == stateLeased:
			// The lease outlives JetStream's deadline: push it past.
			l.js = l.deadline.Add(jsGrace)
			o.nak(s.cons, l.id, l.js.Sub(now))
			s.leases.reschedule(l)
		default:
			// Ready or held: keep JetStream from redelivering it.
			l.js = now.Add(s.cons.ackWait)
			if s.cons.name != "" {
				o.js = append(o.js, jsOp{ackSubject(s.cons.ackPre, l.id), wpiBody})
			}
			s.leases.reschedule(l)
		}
	}
	if s.order != nil {
		for _, next := range s.order.expire(now) {
			s.releaseLocked(next, now)
			woke = true
		}
	}
	if woke {
		s.broadcastLocked()
	}
	s.armLocked(now)
	s.mu.Unlock()
	s.run(o)
}

// armLocked sets the lease manager's timer to the next due time.
func (s *subscriber) armLocked(now time.Time) {
	var at time.Time
	if l := s.leases.next(); l != nil {
		at = l.due
	}
	if s.order != nil {
		for sseq, key := range s.order.away {
			if q := s.order.keys[key]; q != nil && q.head == sseq && (at.IsZero() || q.awayUntil.Before(at)) {
				at = q.awayUntil
			}
		}
	}
	if at.IsZero() || s.gone || (!s.timerAt.IsZero() && !s.timerAt.After(at)) {
		return
	}
	s.timerAt = at
	d := max(at.Sub(now), time.Millisecond)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.tick)
	} else {
		s.timer.Reset(d)
	}
}
