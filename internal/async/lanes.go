package async

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Invocations are dispatched by lane: one durable consumer per function
// (filtered on its subject of the work-queue stream), shared by every
// node. A node pulls from a function's lane only when it has room to run
// that function's attempts, so a backlog of one function waits in the
// stream, in order, instead of being taken and put back, and does not
// hold the workers other functions need.

const (
	// fetchWait is how long one pull waits for invocations.
	fetchWait = 5 * time.Second
	// scanEvery is how often a node looks for functions with queued
	// invocations that it runs no lane for (submitted on another node).
	scanEvery = time.Second
	// laneInactive is how long a lane's consumer may go unpulled by any
	// node before the server deletes it (it is made again when needed:
	// queued invocations stay in the stream).
	laneInactive = time.Hour
)

// lane pulls one function's invocations.
type lane struct {
	fn   string
	cons jetstream.Consumer
	room chan struct{} // a token when an attempt ends

	mu      sync.Mutex // guards running
	running int
}

// dispatch starts the lanes of functions with queued invocations, and
// keeps doing so for invocations other nodes queue, until ctx ends.
func (s *Service) dispatch(fetchCtx, runCtx context.Context) {
	t := time.NewTicker(scanEvery)
	defer t.Stop()
	for {
		s.scan(fetchCtx, runCtx)
		select {
		case <-fetchCtx.Done():
			s.lanesWG.Wait()
			return
		case <-t.C:
		}
	}
}

// scan opens a lane for every function whose subject holds invocations.
func (s *Service) scan(fetchCtx, runCtx context.Context) {
	ctx, cancel := context.WithTimeout(fetchCtx, storeTimeout)
	defer cancel()
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(subjectPrefix+">"))
	if err != nil {
		if fetchCtx.Err() == nil {
			s.log.Warn("async: looking for queued invocations", "err", err)
		}
		return
	}
	for subject, n := range info.State.Subjects {
		if fn, ok := strings.CutPrefix(subject, subjectPrefix); ok && n > 0 {
			s.openLane(fetchCtx, runCtx, fn)
		}
	}
}

// wake makes sure this node pulls function fn's invocations: called when
// one is queued here.
func (s *Service) wake(fn string) {
	s.mu.Lock()
	fetchCtx, runCtx := s.fetchCtx, s.runCtx
	s.mu.Unlock()
	if fetchCtx != nil {
		s.openLane(fetchCtx, runCtx, fn)
	}
}

// openLane starts fn's lane unless it runs.
func (s *Service) openLane(fetchCtx, runCtx context.Context, fn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lanes[fn] != nil || fetchCtx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(fetchCtx, storeTimeout)
	defer cancel()
	cons, err := s.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:           "dispatch-" + fn,
		Description:       "Duct's dispatcher for function " + fn + ", shared by every node",
		FilterSubject:     subjectPrefix + fn,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           s.cfg.AckWait,
		MaxDeliver:        -1, // attempts are counted in the records
		MaxAckPending:     -1, // invocations waiting for a retry hold a pending slot
		InactiveThreshold: laneInactive,
		Replicas:          s.replicas,
	})
	if err != nil {
		if fetchCtx.Err() == nil {
			s.log.Warn("async: opening a function's queue", "function", fn, "err", err)
		}
		return
	}
	l := &lane{fn: fn, cons: cons, room: make(chan struct{}, 1)}
	s.lanes[fn] = l
	s.lanesWG.Add(1)
	go func() {
		defer s.lanesWG.Done()
		s.runLane(fetchCtx, runCtx, l)
	}()
}

// limit is how many attempts of fn this node runs at once: as many as
// the function has instance slots, at most three quarters of the
// workers, so that one function never takes them all.
func (s *Service) limit(fn string) int {
	n := 1
	if v := s.runner.Version(fn); v != nil {
		n = v.Spec.MaxInstances * v.Spec.Concurrency
	}
	return max(1, min(n, s.cfg.Workers*3/4))
}

// runLane pulls fn's invocations while this node has room for them, and
// ends once the function has none queued.
func (s *Service) runLane(fetchCtx, runCtx context.Context, l *lane) {
	for fetchCtx.Err() == nil {
		l.mu.Lock()
		room := s.limit(l.fn) - l.running
		l.mu.Unlock()
		if room <= 0 {
			select {
			case <-l.room:
			case <-fetchCtx.Done():
			}
			continue
		}
		select {
		case s.slots <- struct{}{}:
		case <-fetchCtx.Done():
			return
		}
		n := 1
	fill:
		for n < room {
			select {
			case s.slots <- struct{}{}:
				n++
			default:
				break fill
			}
		}
		got, err := s.pull(fetchCtx, runCtx, l, n)
		for range n - got {
			<-s.slots
		}
		switch {
		case err != nil && fetchCtx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages):
			s.log.Warn("async: fetching invocations", "function", l.fn, "err", err)
			select {
			case <-fetchCtx.Done():
			case <-time.After(time.Second):
			}
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				s.closeLane(l, true)
				return
			}
		case got == 0 && s.closeLane(l, false):
			return
		}
	}
}

// pull fetches up to n invocations and hands each to handle; it returns
// how many came.
func (s *Service) pull(fetchCtx, runCtx context.Context, l *lane, n int) (int, error) {
	ctx, cancel := context.WithTimeout(fetchCtx, fetchWait)
	defer cancel()
	batch, err := l.cons.Fetch(n, jetstream.FetchContext(ctx))
	if err != nil {
		return 0, err
	}
	got := 0
	for msg := range batch.Messages() {
		got++
		l.mu.Lock()
		l.running++
		l.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer func() {
				<-s.slots
				l.mu.Lock()
				l.running--
				l.mu.Unlock()
				select {
				case l.room <- struct{}{}:
				default:
				}
				s.wg.Done()
			}()
			s.handle(runCtx, msg)
		}()
	}
	return got, batch.Error()
}

// closeLane ends l when it has nothing left: nothing running here, and
// nothing queued or waiting for a retry. gone closes it regardless (its
// consumer is gone; the next scan makes another).
func (s *Service) closeLane(l *lane, gone bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !gone {
		l.mu.Lock()
		running := l.running
		l.mu.Unlock()
		if running > 0 {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		info, err := l.cons.Info(ctx)
		if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
			return false
		}
	}
	if s.lanes[l.fn] == l {
		delete(s.lanes, l.fn)
	}
	return true
}
