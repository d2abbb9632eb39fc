package trigger

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/duct-dev/duct"
)

// Tick is one firing of a schedule trigger.
type Tick struct {
	Function string
	Trigger  string // the trigger's ID
	Spec     duct.ScheduleTrigger
	// Time is the instant the tick was due, not when it fired.
	Time time.Time
}

// FireFunc hands a tick to its function and returns the invocation's id.
// It must not wait for the function to run.
type FireFunc func(ctx context.Context, t Tick) (invocation string, err error)

// Scheduler defaults.
const (
	// DefaultCatchUp is how old a missed tick may be and still fire.
	DefaultCatchUp = time.Hour
	// DefaultClaimLease is how long a claimed tick may stay unconfirmed
	// before another node (or this one, restarted) fires it again.
	DefaultClaimLease = 30 * time.Second
	// storeRetry is when to look again at a schedule whose mark could
	// not be read or written.
	storeRetry = 5 * time.Second
)

// SchedulerConfig configures a Scheduler. Zero values get the defaults.
type SchedulerConfig struct {
	Marks *Marks
	Fire  FireFunc
	Clock Clock
	// CatchUp: when ticks were missed (no node was running), the most
	// recent fires if it is at most this old; older ones are skipped.
	// Default DefaultCatchUp.
	CatchUp time.Duration
	// ClaimLease: default DefaultClaimLease.
	ClaimLease time.Duration
	// Node names this node in marks, for people reading them.
	Node   string
	Logger *slog.Logger
}

// Scheduler fires the schedule triggers it is given. Every node runs one
// with every schedule; the marks in the store decide which node fires a
// tick. One goroutine (Run) owns the firing; Set and Remove may be called
// from any goroutine.
type Scheduler struct {
	cfg  SchedulerConfig
	log  *slog.Logger
	wake chan struct{}

	mu      sync.Mutex        // guards entries
	entries map[string]*entry // mark key → schedule
}

// entry is one schedule trigger of one function.
type entry struct {
	fn, id string
	spec   duct.ScheduleTrigger
	sched  *Schedule
	// visit is when Run looks at the entry next; zero means at once.
	// Guarded by Scheduler.mu.
	visit time.Time
}

// NewScheduler returns a scheduler; Run starts it.
func NewScheduler(cfg SchedulerConfig) *Scheduler {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.CatchUp <= 0 {
		cfg.CatchUp = DefaultCatchUp
	}
	if cfg.ClaimLease <= 0 {
		cfg.ClaimLease = DefaultClaimLease
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), entries: map[string]*entry{}}
}

// Set schedules trigger id of function fn (replacing what it had under
// that id).
func (s *Scheduler) Set(fn, id string, spec duct.ScheduleTrigger, sched *Schedule) {
	s.mu.Lock()
	s.entries[markKey(fn, id)] = &entry{fn: fn, id: id, spec: spec, sched: sched}
	s.mu.Unlock()
	s.poke()
}

// Remove unschedules trigger id of function fn.
func (s *Scheduler) Remove(fn, id string) {
	s.mu.Lock()
	delete(s.entries, markKey(fn, id))
	s.mu.Unlock()
}

// Next reports when trigger id of fn is due to be looked at next: its next
// tick once it has one. Zero when unknown.
func (s *Scheduler) Next(fn, id string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[markKey(fn, id)]; e != nil {
		return e.visit
	}
	return time.Time{}
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run fires ticks until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	for {
		now := s.cfg.Clock.Now()
		for _, e := range s.due(now) {
			visit := s.visit(ctx, e, now)
			s.mu.Lock()
			if s.entries[markKey(e.fn, e.id)] == e {
				e.visit = visit
			}
			s.mu.Unlock()
			if ctx.Err() != nil {
				return
			}
		}
		var timer Timer
		var fire <-chan time.Time
		if next := s.earliest(); !next.IsZero() {
			timer = s.cfg.Clock.NewTimer(next.Sub(s.cfg.Clock.Now()))
			fire = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-fire:
		case <-s.wake:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// due returns the entries to look at now.
func (s *Scheduler) due(now time.Time) []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*entry
	for _, e := range s.entries {
		if !e.visit.After(now) {
			out = append(out, e)
		}
	}
	return out
}

func (s *Scheduler) earliest() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var min time.Time
	for _, e := range s.entries {
		if min.IsZero() || e.visit.Before(min) {
			min = e.visit
		}
	}
	return min
}

// visit fires e's due tick, if it has one this node may claim, and
// returns when to look at e again.
func (s *Scheduler) visit(ctx context.Context, e *entry, now time.Time) time.Time {
	for range 8 {
		mk, rev, err := s.cfg.Marks.Get(ctx, e.fn, e.id)
		if errors.Is(err, duct.ErrNotFound) {
			// A trigger seen for the first time: no tick up to now is
			// its. Another node may be writing the same.
			mk = Mark{Tick: now, Claimed: now, Node: s.cfg.Node, Fired: true}
			if _, err = s.cfg.Marks.put(ctx, e.fn, e.id, mk, 0); errors.Is(err, duct.ErrConflict) {
				continue
			}
			if err != nil {
				return s.storeFailed(ctx, e, now, err)
			}
			return e.sched.Next(now)
		}
		if err != nil {
			return s.storeFailed(ctx, e, now, err)
		}
		tick, recheck := s.pick(e, mk, now)
		if tick.IsZero() {
			next := e.sched.Next(latest(mk.Tick, now))
			if !recheck.IsZero() && (next.IsZero() || recheck.Before(next)) {
				next = recheck
			}
			return next
		}
		claim := Mark{Tick: tick, Claimed: now, Node: s.cfg.Node}
		rev, err = s.cfg.Marks.put(ctx, e.fn, e.id, claim, rev)
		if errors.Is(err, duct.ErrConflict) {
			continue // another node claimed it, or changed the mark: read again
		}
		if err != nil {
			return s.storeFailed(ctx, e, now, err)
		}
		inv, err := s.cfg.Fire(ctx, Tick{Function: e.fn, Trigger: e.id, Spec: e.spec, Time: tick})
		if err != nil {
			// The claim stays unconfirmed: once its lease ends, the
			// tick fires again if it is still the latest and recent.
			s.log.Error("schedule: tick not fired", "function", e.fn, "trigger", e.id, "tick", tick, "err", err)
			return now.Add(s.cfg.ClaimLease)
		}
		claim.Fired, claim.Invocation = true, inv
		if _, err := s.cfg.Marks.put(ctx, e.fn, e.id, claim, rev); err != nil && !errors.Is(err, duct.ErrConflict) {
			s.log.Warn("schedule: tick fired, not confirmed in the store: it may fire again (deduplicated by its key)",
				"function", e.fn, "trigger", e.id, "tick", tick, "err", err)
		}
		return e.sched.Next(tick)
	}
	return now.Add(time.Second) // the mark keeps changing under us
}

// pick decides, from the mark, which tick fires now: the latest tick after
// the last one claimed, if it is within the catch-up window (older missed
// ticks are skipped). A claim another node has not confirmed within its
// lease counts as not fired. recheck is when to look again at a claim
// still within its lease.
func (s *Scheduler) pick(e *entry, mk Mark, now time.Time) (tick, recheck time.Time) {
	from := mk.Tick
	if !mk.Fired {
		if lease := mk.Claimed.Add(s.cfg.ClaimLease); now.Before(lease) {
			recheck = lease
		} else {
			from = mk.Tick.Add(-time.Nanosecond) // fire it again
		}
	}
	window := now.Add(-s.cfg.CatchUp)
	if from.Before(window) {
		if first := e.sched.Next(from); !first.IsZero() && !first.After(window) {
			s.log.Info("schedule: skipping ticks missed while no node ran the schedule",
				"function", e.fn, "trigger", e.id, "first", first, "catchUp", s.cfg.CatchUp)
		}
		from = window
	}
	return e.sched.Latest(from, now), recheck
}

func (s *Scheduler) storeFailed(ctx context.Context, e *entry, now time.Time, err error) time.Time {
	if ctx.Err() == nil {
		s.log.Warn("schedule: cannot read or write its mark; trying again", "function", e.fn, "trigger", e.id, "err", err)
	}
	return now.Add(storeRetry)
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
