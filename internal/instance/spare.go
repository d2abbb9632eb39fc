package instance

import (
	"context"
	"sync"
	"time"
)

// spareQueue keeps pre-started, generic runtime processes of one language
// that wait for a load message. Taking one costs only loading the user's
// module; the queue refills in the background.
type spareQueue struct {
	l     *Launcher
	key   string // what kind of spare (see Launcher.spareKey)
	want  int
	ready chan *started

	mu       sync.Mutex // guards starting and closed
	starting int
	closed   bool
}

// take returns a ready spare, or starts one now if none is waiting. The
// caller calls refill once it has made the spare an instance: starting a
// replacement meanwhile would compete with it for the CPU and the kernel's
// mount lock.
func (q *spareQueue) take(ctx context.Context) (*started, error) {
	for {
		select {
		case s := <-q.ready:
			if s.proc.Exited() {
				continue
			}
			return s, nil
		default:
		}
		break
	}
	return q.l.startSpare(ctx, q.key)
}

// refillDelay lets a new instance answer its first request before its
// replacement spare starts competing with it for CPU.
const refillDelay = 25 * time.Millisecond

// refillSoon refills after refillDelay.
func (q *spareQueue) refillSoon() { time.AfterFunc(refillDelay, q.refill) }

// refill starts spares until want are ready or starting.
func (q *spareQueue) refill() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.closed && len(q.ready)+q.starting < q.want {
		q.starting++
		go func() {
			s, err := q.l.startSpare(context.Background(), q.key)
			q.mu.Lock()
			q.starting--
			closed := q.closed
			q.mu.Unlock()
			if err != nil {
				q.l.log.Warn("spare failed to start", "kind", q.key, "err", err)
				return
			}
			if closed {
				s.kill()
				return
			}
			select {
			case q.ready <- s:
			default:
				s.kill()
			}
		}()
	}
}

func (q *spareQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	for {
		select {
		case s := <-q.ready:
			s.kill()
		default:
			return
		}
	}
}
