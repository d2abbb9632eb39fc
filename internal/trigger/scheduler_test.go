package trigger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
)

// fakeClock is a Clock moved by hand. Timers fire when Advance passes
// their deadline (at once when created for a time already past).
type fakeClock struct {
	mu     sync.Mutex // guards now and timers
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c    chan time.Time
	when time.Time
	c0   *fakeClock
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.c0.mu.Lock()
	defer t.c0.mu.Unlock()
	for i, x := range t.c0.timers {
		if x == t {
			t.c0.timers = append(t.c0.timers[:i], t.c0.timers[i+1:]...)
			return true
		}
	}
	return false
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), when: c.now.Add(d), c0: c}
	if d <= 0 {
		t.c <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Set moves the clock to now and fires the timers due.
func (c *fakeClock) Set(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.when.After(now) {
			t.c <- now
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
}

func testMarks(t *testing.T) *Marks {
	t.Helper()
	b, err := broker.Open(context.Background(), broker.Config{DataDir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	m, err := OpenMarks(context.Background(), b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fires records the ticks fired, by any scheduler.
type fires struct {
	mu    sync.Mutex // guards ticks and fail
	ticks []Tick
	nodes []string
	fail  int // fail the next fail fires
}

func (f *fires) fire(node string) FireFunc {
	return func(ctx context.Context, t Tick) (string, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.fail > 0 {
			f.fail--
			return "", errors.New("queue unavailable")
		}
		f.ticks = append(f.ticks, t)
		f.nodes = append(f.nodes, node)
		return fmt.Sprintf("inv-%d", len(f.ticks)), nil
	}
}

func (f *fires) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Time
	for _, t := range f.ticks {
		out = append(out, t.Time.UTC())
	}
	return out
}

// waitFires waits (in real time: the store is real) until n ticks have
// fired, then a little longer to catch duplicates.
func (f *fires) wait(t *testing.T, n int) []time.Time {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.times()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fired %v, want %d ticks", f.times(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	return f.times()
}

// node runs a scheduler until stop is called: a server that can die.
type node struct {
	s    *Scheduler
	stop func()
}

func startNode(t *testing.T, name string, m *Marks, c *fakeClock, f *fires, sched *Schedule) *node {
	t.Helper()
	s := NewScheduler(SchedulerConfig{Marks: m, Fire: f.fire(name), Clock: c, Node: name, CatchUp: 10 * time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	s.Set("report", "schedule-1", duct.ScheduleTrigger{Cron: sched.String()}, sched)
	n := &node{s: s, stop: func() { cancel(); <-done }}
	t.Cleanup(n.stop)
	return n
}

// settle gives the schedulers time to read their marks after a start.
func settle() { time.Sleep(100 * time.Millisecond) }

// TestSchedulerOncePerTick: two nodes share the marks; every tick fires
// once, whichever node fires it, through restarts of both around ticks.
func TestSchedulerOncePerTick(t *testing.T) {
	m := testMarks(t)
	sched, err := ParseSchedule("*/5 * * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	t0 := at(t, "2026-05-01T10:02:00Z")
	c := &fakeClock{now: t0}
	f := &fires{}
	a := startNode(t, "a", m, c, f, sched)
	b := startNode(t, "b", m, c, f, sched)
	settle()
	if got := f.times(); len(got) != 0 {
		t.Fatalf("fired %v before any tick", got)
	}

	// Ticks at 10:05, 10:10, 10:15, each once.
	for _, step := range []struct {
		now   string
		fires int
	}{{"2026-05-01T10:05:00Z", 1}, {"2026-05-01T10:07:00Z", 1}, {"2026-05-01T10:10:00.2Z", 2}, {"2026-05-01T10:15:01Z", 3}} {
		c.Set(at(t, step.now))
		f.wait(t, step.fires)
	}
	want := []time.Time{at(t, "2026-05-01T10:05:00Z"), at(t, "2026-05-01T10:10:00Z"), at(t, "2026-05-01T10:15:00Z")}
	if got := f.wait(t, 3); !equalTimes(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}

	// Both nodes go down before 10:20 and come back at 10:21: the
	// missed tick fires once, on restart.
	a.stop()
	b.stop()
	c.Set(at(t, "2026-05-01T10:21:00Z"))
	startNode(t, "a2", m, c, f, sched)
	startNode(t, "b2", m, c, f, sched)
	want = append(want, at(t, "2026-05-01T10:20:00Z"))
	if got := f.wait(t, 4); !equalTimes(got, want) {
		t.Fatalf("after a restart around 10:20: fired %v, want %v", got, want)
	}
}

// TestSchedulerMissedTicks: while no node runs, ticks are missed; on
// start only the most recent fires, and only within the catch-up window.
func TestSchedulerMissedTicks(t *testing.T) {
	sched, err := ParseSchedule("0 * * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		restart string
		want    []string
	}{
		{"most recent of several, within the window", "2026-05-01T13:04:00Z", []string{"2026-05-01T13:00:00Z"}},
		{"most recent is too old", "2026-05-01T13:30:00Z", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMarks(t)
			c := &fakeClock{now: at(t, "2026-05-01T09:30:00Z")}
			f := &fires{}
			n := startNode(t, "a", m, c, f, sched)
			settle()
			c.Set(at(t, "2026-05-01T10:00:00Z"))
			f.wait(t, 1)
			n.stop() // down from 10:00 to the restart: 11:00, 12:00, 13:00 missed
			c.Set(at(t, tt.restart))
			startNode(t, "a", m, c, f, sched)
			settle()
			if len(tt.want) > 0 {
				f.wait(t, 1+len(tt.want))
			}
			got := f.times()[1:]
			var want []time.Time
			for _, w := range tt.want {
				want = append(want, at(t, w))
			}
			if !equalTimes(got, want) {
				t.Fatalf("after restart at %s: fired %v, want %v", tt.restart, got, want)
			}
		})
	}
}

// TestSchedulerUnconfirmedClaim: a node that claimed a tick and could not
// queue it (it died, or the queue failed) leaves an unconfirmed claim;
// once the claim's lease ends, the tick fires after all.
func TestSchedulerUnconfirmedClaim(t *testing.T) {
	m := testMarks(t)
	sched, err := ParseSchedule("0 * * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeClock{now: at(t, "2026-05-01T09:59:00Z")}
	f := &fires{fail: 1}
	startNode(t, "a", m, c, f, sched)
	settle()
	c.Set(at(t, "2026-05-01T10:00:00Z"))
	var mk Mark
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mk, _, err = m.Get(context.Background(), "report", "schedule-1")
		if err == nil && !mk.Fired && mk.Tick.Equal(at(t, "2026-05-01T10:00:00Z")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mark %+v (%v), want 10:00 claimed, unconfirmed", mk, err)
		}
	}
	settle()
	if got := f.times(); len(got) != 0 {
		t.Fatalf("fired %v while the queue failed", got)
	}
	c.Set(at(t, "2026-05-01T10:00:00Z").Add(DefaultClaimLease))
	if got, want := f.wait(t, 1), []time.Time{at(t, "2026-05-01T10:00:00Z")}; !equalTimes(got, want) {
		t.Fatalf("after the lease: fired %v, want %v", got, want)
	}
	mk, _, _ = m.Get(context.Background(), "report", "schedule-1")
	if !mk.Fired || mk.Invocation != "inv-1" {
		t.Fatalf("mark %+v, want fired as inv-1", mk)
	}
}

func equalTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
