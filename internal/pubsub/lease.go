package pubsub

import (
	"container/heap"
	"time"
)

// A lease is one message this node fetched from a subscription's
// consumer and has not settled. Its state says where it is:
//
//	ready   fetched, waiting for a puller; goes back to JetStream after readyTTL
//	held    fetched, but its ordering key has a message out: waits for it
//	leased  handed to a client until deadline; ack, nack or lapse settle it
//
// Every lease also tracks JetStream's own redelivery deadline (js), kept
// ahead of the lease: the lease manager pushes it forward (a delayed NAK
// for leased messages, a progress ack for the others) before it passes.
type lease struct {
	id       ackID
	msg      Message
	size     int // bytes counted by flow control
	state    leaseState
	owner    *stream   // the stream holding it, nil for Pull and push
	deadline time.Time // leased: lease end; ready: when it goes back
	js       time.Time // when JetStream would redeliver on its own
	due      time.Time // next action: min(deadline, js-jsRefresh)
	index    int       // in the heap; -1 when out
}

type leaseState uint8

const (
	stateReady leaseState = iota
	stateHeld
	stateLeased
)

// schedule computes when the lease manager must next look at l: at its
// deadline, or in time to push JetStream's forward, whichever is first.
func (l *lease) schedule() {
	l.due = l.js.Add(-jsRefresh)
	if l.state != stateHeld && l.deadline.Before(l.due) {
		l.due = l.deadline
	}
}

// leaseHeap orders leases by due time.
type leaseHeap []*lease

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *leaseHeap) Push(x any) {
	l := x.(*lease)
	l.index = len(*h)
	*h = append(*h, l)
}
func (h *leaseHeap) Pop() any {
	old := *h
	n := len(old)
	l := old[n-1]
	old[n-1] = nil
	l.index = -1
	*h = old[:n-1]
	return l
}

// leases is a subscription's lease table on this node: by stream
// sequence, and by due time. Not safe for concurrent use: the
// subscriber's mutex guards it.
type leases struct {
	bySeq map[uint64]*lease
	heap  leaseHeap
}

func newLeases() leases { return leases{bySeq: map[uint64]*lease{}} }

func (t *leases) add(l *lease) {
	l.schedule()
	t.bySeq[l.id.sseq] = l
	heap.Push(&t.heap, l)
}

func (t *leases) get(sseq uint64) *lease { return t.bySeq[sseq] }

func (t *leases) remove(l *lease) {
	if t.bySeq[l.id.sseq] == l {
		delete(t.bySeq, l.id.sseq)
	}
	if l.index >= 0 {
		heap.Remove(&t.heap, l.index)
	}
}

// reschedule fixes l's place after its deadlines changed.
func (t *leases) reschedule(l *lease) {
	l.schedule()
	if l.index >= 0 {
		heap.Fix(&t.heap, l.index)
	}
}

// next is the earliest due lease, nil when there is none.
func (t *leases) next() *lease {
	if len(t.heap) == 0 {
		return nil
	}
	return t.heap[0]
}

func (t *leases) len() int { return len(t.bySeq) }
