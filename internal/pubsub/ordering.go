package pubsub

import (
	"slices"
	"time"
)

// orderGate keeps ordering keys in order for a subscription with ordering
// on: per key at most one message is out (ready, leased, or nacked and
// back in JetStream until it is redelivered), and the key's later
// messages wait here, in stream order, until that one is acknowledged or
// dead-lettered. Messages without a key pass. The subscriber's mutex
// guards it.
type orderGate struct {
	keys map[string]*keyQueue
	away map[uint64]string // stream sequence → key, for heads back in JetStream
	held int
}

type keyQueue struct {
	head      uint64    // stream sequence of the message out; 0 when none
	awayUntil time.Time // while the head is back in JetStream: when to stop waiting for it
	held      []*lease  // fetched, in stream order
}

func newOrderGate() *orderGate {
	return &orderGate{keys: map[string]*keyQueue{}, away: map[uint64]string{}}
}

// admit reports whether l may be delivered now; if not it is held.
func (g *orderGate) admit(l *lease) bool {
	key := l.msg.OrderingKey
	if key == "" {
		return true
	}
	q := g.keys[key]
	if q == nil {
		g.keys[key] = &keyQueue{head: l.id.sseq}
		return true
	}
	if q.head == 0 || q.head == l.id.sseq {
		q.head = l.id.sseq
		q.awayUntil = time.Time{}
		delete(g.away, l.id.sseq)
		return true
	}
	i, _ := slices.BinarySearchFunc(q.held, l.id.sseq, func(h *lease, seq uint64) int { return cmpU64(h.id.sseq, seq) })
	q.held = slices.Insert(q.held, i, l)
	g.held++
	return false
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// drop forgets a held message (redelivered meanwhile, or acknowledged
// with an older ack id).
func (g *orderGate) drop(l *lease) {
	q := g.keys[l.msg.OrderingKey]
	if q == nil {
		return
	}
	if i := slices.Index(q.held, l); i >= 0 {
		q.held = slices.Delete(q.held, i, i+1)
		g.held--
	}
}

// done records that the message sseq of key is settled for good
// (acknowledged or dead-lettered). If it was the key's head, the next
// held message of the key becomes the head and is returned: it is now
// deliverable.
func (g *orderGate) done(key string, sseq uint64) *lease {
	q := g.keys[key]
	if key == "" || q == nil || q.head != sseq {
		return nil
	}
	delete(g.away, sseq)
	q.head, q.awayUntil = 0, time.Time{}
	if len(q.held) == 0 {
		delete(g.keys, key)
		return nil
	}
	next := q.held[0]
	q.held = slices.Delete(q.held, 0, 1)
	g.held--
	q.head = next.id.sseq
	return next
}

// wentAway records that the head sseq of key went back to JetStream (a
// nack or a lapse): the key stays blocked until it returns, but not past
// until, in case it was settled by some other way meanwhile (an ack
// through another node).
func (g *orderGate) wentAway(key string, sseq uint64, until time.Time) {
	q := g.keys[key]
	if key == "" || q == nil || q.head != sseq {
		return
	}
	q.awayUntil = until
	g.away[sseq] = key
}

// awayKey returns the key whose head sseq is back in JetStream.
func (g *orderGate) awayKey(sseq uint64) (string, bool) {
	k, ok := g.away[sseq]
	return k, ok
}

// expire gives up waiting for heads away past their time, and returns
// the messages that become deliverable.
func (g *orderGate) expire(now time.Time) []*lease {
	var out []*lease
	for sseq, key := range g.away {
		q := g.keys[key]
		if q == nil || q.head != sseq {
			delete(g.away, sseq)
			continue
		}
		if now.After(q.awayUntil) {
			if next := g.done(key, sseq); next != nil {
				out = append(out, next)
			}
		}
	}
	return out
}
