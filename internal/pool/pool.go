// Package pool keeps the warm instances of each function version: it
// admits requests to instance slots, queues them (bounded, with a timeout)
// when every slot is busy, launches instances on demand, keeps minimum
// instances warm, and reaps idle ones. Scaling follows Decide, a pure
// function tested on its own.
package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/instance"
	"github.com/duct-dev/duct/internal/metrics"
)

// ErrRetired is returned by Acquire on a pool whose version no longer
// serves new requests; the caller looks the route up again.
var ErrRetired = errors.New("pool retired")

// Launcher starts instances.
type Launcher interface {
	Launch(ctx context.Context, t *instance.Target) (*instance.Instance, error)
	StopGrace() time.Duration
}

// Options are server-wide admission settings.
type Options struct {
	// QueueDepth bounds requests waiting for a slot per version; beyond it
	// requests are throttled at once. 0 means 1000.
	QueueDepth int
	// QueueTimeout bounds how long a request waits for a slot. 0 means 30s.
	QueueTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.QueueDepth == 0 {
		o.QueueDepth = 1000
	}
	if o.QueueTimeout == 0 {
		o.QueueTimeout = 30 * time.Second
	}
	return o
}

// Pool holds the instances of one function version.
type Pool struct {
	target   *instance.Target
	limits   Limits
	opts     Options
	launcher Launcher
	metrics  *metrics.Function
	log      *slog.Logger
	now      func() time.Time
	onEmpty  func(*Pool) // called once a retired pool has no instances left

	mu       sync.Mutex // guards the fields below
	members  map[string]*member
	avail    []*member // ready with a free slot; most recently released last
	waiters  []*waiter // FIFO
	starting int
	retired  bool
	emptied  bool
	// backoff and retryAt slow periodic launches after a failed start.
	backoff time.Duration
	retryAt time.Time
}

type member struct {
	inst      *instance.Instance
	inflight  int
	idleSince time.Time
	inAvail   bool
	gone      bool // stopped or exited: never hand out again
	fresh     bool // has not served yet: its first lease reports the init
}

type waiter struct {
	ch    chan grant // buffered 1
	since time.Time
}

type grant struct {
	m    *member
	cold bool
	err  error
}

func newPool(t *instance.Target, opts Options, l Launcher, m *metrics.Function, log *slog.Logger, onEmpty func(*Pool)) *Pool {
	s := t.Version.Spec
	return &Pool{
		target:   t,
		limits:   Limits{Concurrency: s.Concurrency, Min: s.MinInstances, Max: s.MaxInstances, IdleTimeout: s.IdleTimeout.D()},
		opts:     opts.withDefaults(),
		launcher: l,
		metrics:  m,
		log:      log,
		now:      time.Now,
		onEmpty:  onEmpty,
		members:  map[string]*member{},
	}
}

// Metrics are the pool's function's metric handles.
func (p *Pool) Metrics() *metrics.Function { return p.metrics }

// Version is the function version this pool serves.
func (p *Pool) Version() *duct.Version { return p.target.Version }

// Lease is one request's hold on an instance slot. Release it exactly once.
type Lease struct {
	Instance *instance.Instance
	// Cold is set when this request waited for the instance to start;
	// InitDuration is then its start-up time.
	Cold         bool
	InitDuration time.Duration
	QueueWait    time.Duration

	p *Pool
	m *member
}

// Acquire waits for a free slot on an instance, launching one if needed.
// invocation tags the instance's output while the lease is held (when the
// instance serves one request at a time).
func (p *Pool) Acquire(ctx context.Context, invocation string) (*Lease, error) {
	p.mu.Lock()
	if p.retired {
		p.mu.Unlock()
		return nil, ErrRetired
	}
	if m := p.takeLocked(); m != nil {
		cold := p.claimLocked(m)
		p.mu.Unlock()
		return p.lease(m, cold, invocation, 0), nil
	}
	if len(p.waiters) >= p.opts.QueueDepth {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %d requests already waiting", duct.ErrOverloaded, p.opts.QueueDepth)
	}
	w := &waiter{ch: make(chan grant, 1), since: p.now()}
	p.waiters = append(p.waiters, w)
	p.scaleLocked(false)
	p.mu.Unlock()

	timer := time.NewTimer(p.opts.QueueTimeout)
	defer timer.Stop()
	select {
	case g := <-w.ch:
		if g.err != nil {
			return nil, g.err
		}
		return p.lease(g.m, g.cold, invocation, p.now().Sub(w.since)), nil
	case <-ctx.Done():
		p.abandon(w)
		return nil, ctx.Err()
	case <-timer.C:
		p.abandon(w)
		return nil, fmt.Errorf("%w: no instance free within %s", duct.ErrOverloaded, p.opts.QueueTimeout)
	}
}

// claimLocked reports whether m has served nothing yet: only the request
// that gets an instance first reports its start.
func (p *Pool) claimLocked(m *member) bool {
	cold := m.fresh
	m.fresh = false
	return cold
}

func (p *Pool) lease(m *member, cold bool, invocation string, wait time.Duration) *Lease {
	l := &Lease{Instance: m.inst, QueueWait: wait, p: p, m: m}
	if cold {
		l.Cold, l.InitDuration = true, m.inst.InitDuration
	}
	if p.limits.Concurrency == 1 {
		m.inst.Begin(invocation)
	}
	if wait > 0 {
		p.metrics.QueueWait.Observe(wait.Seconds())
	}
	return l
}

// abandon removes a waiter that gave up; a slot granted meanwhile goes
// back.
func (p *Pool) abandon(w *waiter) {
	p.mu.Lock()
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			return
		}
	}
	p.mu.Unlock()
	if g := <-w.ch; g.m != nil {
		p.release(g.m, false)
	}
}

// takeLocked claims a slot on the most recently used instance with one free.
func (p *Pool) takeLocked() *member {
	for len(p.avail) > 0 {
		m := p.avail[len(p.avail)-1]
		if m.gone {
			p.avail = p.avail[:len(p.avail)-1]
			m.inAvail = false
			continue
		}
		m.inflight++
		if m.inflight >= p.limits.Concurrency {
			p.avail = p.avail[:len(p.avail)-1]
			m.inAvail = false
		}
		return m
	}
	return nil
}

// Release ends the lease. kill stops the instance (it timed out or broke
// its protocol); a replacement is launched if requests are waiting.
func (l *Lease) Release(kill bool) {
	if l.p.limits.Concurrency == 1 {
		l.m.inst.End()
	}
	l.p.release(l.m, kill)
}

func (p *Pool) release(m *member, kill bool) {
	p.mu.Lock()
	m.inflight--
	if kill && !m.gone {
		p.dropLocked(m, true, "invocation timed out")
		p.scaleLocked(false)
		p.mu.Unlock()
		return
	}
	if m.gone {
		p.maybeEmptyLocked()
		p.mu.Unlock()
		return
	}
	p.offerLocked(m)
	p.mu.Unlock()
}

// offerLocked gives m's free slots to waiters, then marks it available.
func (p *Pool) offerLocked(m *member) {
	for len(p.waiters) > 0 && m.inflight < p.limits.Concurrency {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		m.inflight++
		w.ch <- grant{m: m, cold: p.claimLocked(m)}
	}
	if m.inflight >= p.limits.Concurrency {
		return
	}
	if m.inflight == 0 {
		m.idleSince = p.now()
		if p.retired {
			p.dropLocked(m, false, "version retired")
			return
		}
	}
	if !m.inAvail {
		m.inAvail = true
		p.avail = append(p.avail, m)
	}
}

// dropLocked takes m out of service and stops its process: at once when
// kill, else with the grace period. why goes to the function's log.
func (p *Pool) dropLocked(m *member, kill bool, why string) {
	if m.gone {
		return
	}
	m.gone = true
	delete(p.members, m.inst.ID)
	p.metrics.Instances.Dec()
	inst := m.inst
	grace := p.launcher.StopGrace()
	go func() {
		if kill {
			inst.Kill(why)
		} else {
			inst.Stop(grace, why)
		}
	}()
	p.maybeEmptyLocked()
}

// scaleLocked applies Decide. tick also considers stopping idle instances.
func (p *Pool) scaleLocked(tick bool) {
	if p.retired && len(p.waiters) == 0 {
		return
	}
	s := Stats{Ready: len(p.members), Starting: p.starting, Waiting: len(p.waiters)}
	lim := p.limits
	if p.retired {
		lim.Min = 0
	}
	if tick {
		now := p.now()
		for id, m := range p.members {
			if m.inflight == 0 {
				s.Idle = append(s.Idle, Idle{ID: id, Since: m.idleSince})
			}
		}
		d := Decide(now, s, lim)
		if now.Before(p.retryAt) && s.Waiting == 0 {
			d.Start = 0
		}
		for _, id := range d.Stop {
			if m := p.members[id]; m != nil {
				p.dropLocked(m, false, "idle")
			}
		}
		p.startLocked(d.Start)
		return
	}
	p.startLocked(Decide(time.Time{}, s, lim).Start)
}

func (p *Pool) startLocked(n int) {
	for range n {
		p.starting++
		p.metrics.Instances.Inc()
		go p.launch()
	}
}

func (p *Pool) launch() {
	inst, err := p.launcher.Launch(context.Background(), p.target)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starting--
	if err != nil {
		p.metrics.Instances.Dec()
		p.log.Warn("instance failed to start", "function", p.target.Version.Function, "version", p.target.Version.Number, "err", err)
		// The version failed to start: fail the waiting requests that
		// no instance still launching will serve, rather than launching
		// again for each. Periodic launches (minimum instances) back off.
		for len(p.waiters) > p.starting*p.limits.Concurrency {
			w := p.waiters[len(p.waiters)-1]
			p.waiters = p.waiters[:len(p.waiters)-1]
			w.ch <- grant{err: err}
		}
		p.backoff = min(max(2*p.backoff, time.Second), time.Minute)
		p.retryAt = p.now().Add(p.backoff)
		p.maybeEmptyLocked()
		return
	}
	p.backoff = 0
	p.metrics.ColdStarts.Inc()
	p.metrics.Init.Observe(inst.InitDuration.Seconds())
	m := &member{inst: inst, fresh: true, idleSince: p.now()}
	p.members[inst.ID] = m
	go p.watch(m)
	p.offerLocked(m)
	// Only a request that waited for this instance saw its start; one
	// arriving later finds it warm (minimum instances, say).
	m.fresh = false
}

// watch notices an instance exiting by itself (crash, OOM, exit).
func (p *Pool) watch(m *member) {
	<-m.inst.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.gone {
		return
	}
	m.gone = true
	delete(p.members, m.inst.ID)
	p.metrics.Instances.Dec()
	p.log.Info("instance exited", "function", p.target.Version.Function, "instance", m.inst.ID, "reason", m.inst.ExitReason())
	m.inst.Kill("exited by itself") // release its sockets and any leftover children
	p.scaleLocked(false)
	p.maybeEmptyLocked()
}

// Tick applies the periodic part of the policy: reap idle instances, keep
// the minimum warm.
func (p *Pool) Tick() {
	p.mu.Lock()
	p.scaleLocked(true)
	p.mu.Unlock()
}

// Retire stops new admissions; instances stop once idle. The pool calls
// onEmpty when its last instance is gone.
func (p *Pool) Retire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.retired {
		return
	}
	p.retired = true
	for _, m := range p.members {
		if m.inflight == 0 {
			p.dropLocked(m, false, "version retired")
		}
	}
	p.maybeEmptyLocked()
}

func (p *Pool) maybeEmptyLocked() {
	if p.retired && !p.emptied && len(p.members) == 0 && p.starting == 0 && len(p.waiters) == 0 {
		p.emptied = true
		if p.onEmpty != nil {
			go p.onEmpty(p)
		}
	}
}

// Instances describes the live instances.
func (p *Pool) Instances() []duct.InstanceInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]duct.InstanceInfo, 0, len(p.members))
	for _, m := range p.members {
		state := "idle"
		if m.inflight > 0 {
			state = "busy"
		}
		out = append(out, m.inst.Info(state, m.inflight))
	}
	if p.starting > 0 {
		out = append(out, duct.InstanceInfo{State: fmt.Sprintf("starting (%d)", p.starting), Version: p.target.Version.Number})
	}
	return out
}

// Count returns instances ready and launching.
func (p *Pool) Count() (ready, starting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.members), p.starting
}

// StopIdle stops every instance with nothing in flight, minimum instances
// included, and waits until they have exited.
func (p *Pool) StopIdle() {
	p.mu.Lock()
	var idle []*member
	for _, m := range p.members {
		if m.inflight == 0 && !m.gone {
			m.gone = true
			delete(p.members, m.inst.ID)
			p.metrics.Instances.Dec()
			idle = append(idle, m)
		}
	}
	p.maybeEmptyLocked()
	p.mu.Unlock()
	for _, m := range idle {
		m.inst.Kill("scaled to zero")
		<-m.inst.Done()
	}
}

// stopAll stops every instance now (shutdown), waiting for them to exit.
func (p *Pool) stopAll(grace time.Duration) {
	p.mu.Lock()
	p.retired = true
	ms := make([]*member, 0, len(p.members))
	for _, m := range p.members {
		m.gone = true
		ms = append(ms, m)
	}
	p.members = map[string]*member{}
	for _, w := range p.waiters {
		w.ch <- grant{err: duct.ErrShuttingDown}
	}
	p.waiters = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.inst.Stop(grace, "server shutting down")
		}()
	}
	wg.Wait()
}
