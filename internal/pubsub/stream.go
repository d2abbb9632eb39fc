package pubsub

import (
	"context"
	"sync"

	"github.com/duct-dev/duct"
)

// stream is one streaming pull. Flow control counts what it holds:
// messages it handed out and that are neither settled nor lapsed.
type stream struct {
	s        *subscriber
	opts     StreamOptions
	closeMu  sync.Once
	outMsgs  int   // guarded by s.mu
	outBytes int64 // guarded by s.mu
	closed   bool  // guarded by s.mu
}

// defaultStreamWindow bounds a stream without a message limit.
const defaultStreamWindow = 1000

// StreamingPull opens a stream on a subscription.
func (p *Broker) StreamingPull(ctx context.Context, sub string, opts StreamOptions) (Stream, error) {
	if d := opts.AckDeadline; d != 0 && (d < MinAckDeadline || d > MaxAckDeadline) {
		return nil, duct.Invalid("stream ack deadline", "%s: want %s to %s", d, MinAckDeadline, MaxAckDeadline)
	}
	if opts.MaxOutstandingMessages < 0 || opts.MaxOutstandingBytes < 0 {
		return nil, duct.Invalid("flow control", "limits cannot be negative")
	}
	s, err := p.subscriber(ctx, sub)
	if err != nil {
		return nil, err
	}
	return &stream{s: s, opts: opts}, nil
}

// Receive waits until flow control allows more and messages are there,
// then returns them.
func (st *stream) Receive(ctx context.Context) ([]Received, error) {
	s := st.s
	for {
		s.mu.Lock()
		if st.closed {
			s.mu.Unlock()
			return nil, ErrStreamClosed
		}
		if s.gone {
			s.mu.Unlock()
			return nil, s.goneErr()
		}
		maxMsgs := st.opts.MaxOutstandingMessages
		if maxMsgs == 0 {
			maxMsgs = defaultStreamWindow
		}
		window := min(maxMsgs-st.outMsgs, MaxPullMessages)
		var bytesLeft int64
		if st.opts.MaxOutstandingBytes > 0 {
			bytesLeft = st.opts.MaxOutstandingBytes - st.outBytes
		}
		if window <= 0 || (st.opts.MaxOutstandingBytes > 0 && bytesLeft <= 0) {
			ch := s.changed
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		s.mu.Unlock()
		got, err := s.take(ctx, window, bytesLeft, st, st.opts.AckDeadline, true)
		if len(got) > 0 || err != nil {
			return got, err
		}
	}
}

// Close ends the stream; the messages it holds go back to JetStream at
// once and are redelivered.
func (st *stream) Close() error {
	st.closeMu.Do(func() {
		s := st.s
		var o ops
		s.mu.Lock()
		st.closed = true
		now := s.p.now()
		for _, l := range s.leases.bySeq {
			if l.owner == st {
				s.backLocked(l, now, &o)
			}
		}
		s.armLocked(now)
		s.broadcastLocked()
		s.mu.Unlock()
		s.run(o)
	})
	return nil
}
