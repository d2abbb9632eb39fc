package pool

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/instance"
	"github.com/duct-dev/duct/internal/metrics"
)

// Manager maps each function to the pool of its serving version. Lookups
// are lock-free (a copy-on-write map); changes come from the daemon.
type Manager struct {
	launcher Launcher
	opts     Options
	reg      *metrics.Registry
	log      *slog.Logger

	routes atomic.Pointer[map[string]*Pool]

	mu       sync.Mutex // guards the fields below and writes to routes
	retiring map[*Pool]bool
	fnm      map[string]*metrics.Function
	closed   bool
}

// NewManager returns an empty Manager.
func NewManager(l Launcher, opts Options, reg *metrics.Registry, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{launcher: l, opts: opts, reg: reg, log: log, retiring: map[*Pool]bool{}, fnm: map[string]*metrics.Function{}}
	empty := map[string]*Pool{}
	m.routes.Store(&empty)
	return m
}

// Lookup returns the pool serving function name, or nil.
func (m *Manager) Lookup(name string) *Pool {
	return (*m.routes.Load())[name]
}

// Set makes t the serving version of its function. The previous version's
// pool is retired: requests it holds finish, new ones go to t.
func (m *Manager) Set(t *instance.Target) {
	v := t.Version
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	cur := m.Lookup(v.Function)
	if cur != nil && cur.Version().Number == v.Number && cur.Version().ArtifactDigest == v.ArtifactDigest && sameInputs(cur.target, t) {
		return
	}
	fm := m.fnm[v.Function]
	if fm == nil {
		fm = m.reg.For(v.Function)
		m.fnm[v.Function] = fm
	}
	p := newPool(t, m.opts, m.launcher, fm, m.log, m.forget)
	m.swapLocked(v.Function, p)
	if cur != nil {
		m.retiring[cur] = true
		cur.Retire()
	}
	p.Tick() // start minimum instances now
}

// sameInputs reports whether two targets give instances the same
// environment and files: a secret's new value changes them without a new
// version, and must reach new instances.
func sameInputs(a, b *instance.Target) bool {
	return maps.Equal(a.Env, b.Env) && maps.EqualFunc(a.Files, b.Files, bytes.Equal)
}

// Remove stops serving function name.
func (m *Manager) Remove(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.Lookup(name)
	if cur == nil {
		return
	}
	m.swapLocked(name, nil)
	delete(m.fnm, name)
	m.retiring[cur] = true
	cur.Retire()
}

func (m *Manager) swapLocked(name string, p *Pool) {
	old := *m.routes.Load()
	next := make(map[string]*Pool, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	if p == nil {
		delete(next, name)
	} else {
		next[name] = p
	}
	m.routes.Store(&next)
}

func (m *Manager) forget(p *Pool) {
	m.mu.Lock()
	delete(m.retiring, p)
	m.mu.Unlock()
}

// Instances lists the live instances of a function, serving and retiring.
func (m *Manager) Instances(name string) []duct.InstanceInfo {
	var out []duct.InstanceInfo
	if p := m.Lookup(name); p != nil {
		out = append(out, p.Instances()...)
	}
	m.mu.Lock()
	var old []*Pool
	for p := range m.retiring {
		if p.Version().Function == name {
			old = append(old, p)
		}
	}
	m.mu.Unlock()
	for _, p := range old {
		out = append(out, p.Instances()...)
	}
	return out
}

// Run ticks every pool each interval (reaping idle instances, keeping
// minimums warm) until ctx ends.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, p := range *m.routes.Load() {
				p.Tick()
			}
			m.mu.Lock()
			old := make([]*Pool, 0, len(m.retiring))
			for p := range m.retiring {
				old = append(old, p)
			}
			m.mu.Unlock()
			for _, p := range old {
				p.Tick()
			}
		}
	}
}

// Shutdown stops every instance, waiting up to the launcher's grace.
func (m *Manager) Shutdown() {
	m.mu.Lock()
	m.closed = true
	var all []*Pool
	for _, p := range *m.routes.Load() {
		all = append(all, p)
	}
	for p := range m.retiring {
		all = append(all, p)
	}
	empty := map[string]*Pool{}
	m.routes.Store(&empty)
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stopAll(m.launcher.StopGrace())
		}()
	}
	wg.Wait()
}
