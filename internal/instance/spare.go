package instance

import (
	"context"
	"sync"

	"github.com/duct-dev/duct"
)

// spareQueue keeps pre-started, generic runtime processes of one language
// that wait for a load message. Taking one costs only loading the user's
// module; the queue refills in the background.
type spareQueue struct {
	l       *Launcher
	runtime duct.Runtime
	argv    []string
	want    int
	ready   chan *started

	mu       sync.Mutex // guards starting and closed
	starting int
	closed   bool
}

// take returns a ready spare, or starts one now if none is waiting.
func (q *spareQueue) take(ctx context.Context) (*started, error) {
	defer q.refill()
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
	return q.l.start(ctx, q.argv, baseEnv(), "/", true)
}

// refill starts spares until want are ready or starting.
func (q *spareQueue) refill() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.closed && len(q.ready)+q.starting < q.want {
		q.starting++
		go func() {
			s, err := q.l.start(context.Background(), q.argv, baseEnv(), "/", true)
			q.mu.Lock()
			q.starting--
			closed := q.closed
			q.mu.Unlock()
			if err != nil {
				q.l.log.Warn("spare runtime failed to start", "runtime", q.runtime, "err", err)
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
