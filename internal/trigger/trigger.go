// Package trigger makes events reach functions: schedules (cron specs
// parsed here, each tick claimed in the store so that it fires once
// across nodes and restarts), topic triggers (a Pub/Sub subscription per
// trigger, read on every node and delivered through the data plane), HTTP
// routes on the gateway's listener, and the CloudEvents ingress (events
// matched to event triggers and queued as asynchronous invocations).
// Every event reaches a function as a CloudEvent in HTTP binary mode.
//
// The daemon tells a Manager which version of each function serves
// (Apply, Remove); the Manager keeps the triggers of those versions
// running, and their traces in the store (subscriptions, schedule marks)
// in step.
package trigger

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/pubsub"
)

// Runner runs one invocation synchronously through the data plane and
// writes the function's answer to w: the gateway.
type Runner interface {
	Attempt(ctx context.Context, w http.ResponseWriter, inv *duct.QueuedInvocation) (*duct.Report, error)
}

// Queue stores asynchronous invocations durably (retried by the
// function's policy): the async service. Enqueue returns the id to poll.
type Queue interface {
	Enqueue(ctx context.Context, inv *duct.QueuedInvocation) (string, error)
}

// Config configures a Manager.
type Config struct {
	// Marks keeps the schedules' last ticks. Required.
	Marks *Marks
	// Active lists the serving version of every function in the store.
	// Start deletes the subscriptions and marks of triggers none of them
	// has (removed while this node was down); nil skips that.
	Active func(ctx context.Context) ([]*duct.Version, error)
	// Clock drives schedules; nil means the system clock.
	Clock Clock
	// CatchUp is how old a missed tick may be and still fire; default
	// DefaultCatchUp (1h).
	CatchUp time.Duration
	// Node names this node in schedule marks.
	Node   string
	Logger *slog.Logger
}

// Manager runs the triggers of the functions this node serves.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	sched  *Scheduler
	routes atomic.Pointer[Routes]
	events atomic.Pointer[eventIndex]

	ctx    context.Context // ends at Close: stops schedules and dispatchers
	cancel context.CancelFunc
	// work is the context of deliveries under way: it ends closeGrace
	// after Close begins, so that they may finish first.
	work     context.Context
	stopWork context.CancelFunc
	wg       sync.WaitGroup // every goroutine the manager started

	mu      sync.Mutex             // guards the fields below
	fns     map[string]*fnState    // function → its serving triggers
	disp    map[string]*dispatcher // subscription → this node's reader
	runner  Runner                 // nil until Start
	queue   Queue                  // nil: no asynchronous queue
	ps      pubsub.Service         // nil until Start, or without a broker
	started bool
	observe func(status int, body []byte)
}

// fnState is what a function's serving version triggers.
type fnState struct {
	version  *duct.Version
	triggers []usable
}

// usable is a trigger that passed its checks, with what it needs to run.
type usable struct {
	duct.Trigger
	id    string
	sched *Schedule // schedule triggers
}

// New returns a Manager. Functions applied before Start are recorded
// (and their subscriptions made) but fire only once it has started.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, fns: map[string]*fnState{}, disp: map[string]*dispatcher{}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.work, m.stopWork = context.WithCancel(context.Background())
	m.sched = NewScheduler(SchedulerConfig{Marks: cfg.Marks, Fire: m.fire, Clock: cfg.Clock, CatchUp: cfg.CatchUp,
		Node: cfg.Node, Logger: cfg.Logger})
	m.routes.Store(&Routes{})
	m.events.Store(&eventIndex{})
	return m
}

// Start fires schedules and delivers topic messages through runner,
// queues ticks and ingested events on queue (nil: run them at once
// instead, without retries), and reads topic triggers' subscriptions on
// ps (nil: topic triggers are refused). It then deletes, in the
// background, what the store keeps for triggers that no longer exist.
func (m *Manager) Start(runner Runner, queue Queue, ps pubsub.Service) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return
	}
	m.runner, m.queue, m.ps, m.started = runner, queue, ps, true
	if ps != nil {
		for fn, st := range m.fns {
			for _, u := range st.triggers {
				if u.Topic != nil {
					m.topicLocked(m.ctx, fn, u.id, u.Topic, &st.version.Spec)
				}
			}
		}
	}
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		m.sched.Run(m.ctx)
	}()
	go func() {
		defer m.wg.Done()
		m.reconcile(m.ctx)
	}()
}

// closeGrace is how long deliveries under way may run on once Close
// begins; then they are cancelled, and their messages redelivered later.
const closeGrace = 5 * time.Second

// Close stops schedules and deliveries, lets the deliveries under way
// finish for a few seconds, and waits for them.
func (m *Manager) Close() {
	m.cancel()
	t := time.AfterFunc(closeGrace, m.stopWork)
	m.wg.Wait()
	t.Stop()
	m.stopWork()
}

// Observe makes f see the answer (status, first KiB of the body) of
// every delivery by topic triggers applied from now on: benchmarks
// measure with it.
func (m *Manager) Observe(f func(status int, body []byte)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.observe = f
}

// Routes is the table of HTTP triggers.
func (m *Manager) Routes() *Routes { return m.routes.Load() }

// Apply runs the triggers of v, the version serving its function on this
// node, in place of those of the version before: new topic triggers get
// their subscription (and their topic, if it does not exist; before
// Start, when it starts), removed ones lose it; removed schedules lose
// their mark. Failures to reach the
// broker are logged and retried by the dispatchers; a trigger that fails
// its checks (a version deployed before they existed) is skipped, and
// said so.
func (m *Manager) Apply(ctx context.Context, v *duct.Version) {
	fn := v.Function
	spec := v.Spec
	var ts []usable
	for i, t := range spec.Triggers {
		u, err := m.check(t)
		if err != nil {
			m.log.Error("trigger: skipping a trigger that fails its checks", "function", fn, "version", v.Number, "index", i, "err", err)
			continue
		}
		ts = append(ts, u)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var old []usable
	if st := m.fns[fn]; st != nil {
		old = st.triggers
	}
	m.fns[fn] = &fnState{version: v, triggers: ts}
	m.rebuildLocked()
	m.switchLocked(ctx, fn, &spec, old, ts)
}

// Remove stops the triggers of a deleted function and deletes their
// subscriptions and marks.
func (m *Manager) Remove(ctx context.Context, fn string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.fns[fn]
	if st == nil {
		return
	}
	delete(m.fns, fn)
	m.rebuildLocked()
	m.switchLocked(ctx, fn, &st.version.Spec, st.triggers, nil)
}

// check judges one trigger as deploys do (Vet aside: conflicts between
// functions), for versions recorded before the checks existed.
func (m *Manager) check(t duct.Trigger) (usable, error) {
	u := usable{Trigger: t, id: t.ID()}
	probe := duct.Function{Name: "probe", Runtime: duct.RuntimeGo, Triggers: []duct.Trigger{t}}.WithDefaults()
	if err := probe.Validate(); err != nil {
		return u, err
	}
	if t.Schedule != nil {
		s, err := ParseSchedule(t.Schedule.Cron, t.Schedule.Timezone)
		if err != nil {
			return u, err
		}
		u.sched = s
	}
	return u, nil
}

// rebuildLocked swaps in the route table and event index of m.fns.
func (m *Manager) rebuildLocked() {
	all := make(map[string][]duct.Trigger, len(m.fns))
	for fn, st := range m.fns {
		for _, u := range st.triggers {
			all[fn] = append(all[fn], u.Trigger)
		}
	}
	rt, conflicts := buildRoutes(all)
	for _, c := range conflicts {
		m.log.Error("trigger: HTTP route conflict", "conflict", c)
	}
	m.routes.Store(rt)
	idx := buildEvents(all)
	m.events.Store(&idx)
}

// switchLocked moves fn's schedules and topic triggers from old to cur.
func (m *Manager) switchLocked(ctx context.Context, fn string, spec *duct.Function, old, cur []usable) {
	keep := map[string]bool{}
	for _, u := range cur {
		keep[u.id] = true
	}
	for _, u := range old {
		if keep[u.id] {
			continue
		}
		switch {
		case u.Schedule != nil:
			m.sched.Remove(fn, u.id)
			if err := m.cfg.Marks.Delete(ctx, fn, u.id); err != nil {
				m.log.Warn("trigger: cannot delete a schedule's mark", "function", fn, "trigger", u.id, "err", err)
			}
		case u.Topic != nil && m.ps != nil:
			m.dropTopicLocked(ctx, fn, u.id)
		}
	}
	for _, u := range cur {
		switch {
		case u.Schedule != nil:
			m.sched.Set(fn, u.id, *u.Schedule, u.sched)
		case u.Topic != nil && m.ps != nil:
			m.topicLocked(ctx, fn, u.id, u.Topic, spec)
		}
	}
}
