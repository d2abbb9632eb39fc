package pool

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/instance"
	"github.com/duct-dev/duct/internal/metrics"
)

var serverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pool-test-")
	if err != nil {
		panic(err)
	}
	serverBin = filepath.Join(dir, "server")
	build := exec.Command("go", "build", "-o", serverBin, "./testdata/server")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build test server: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func testTarget(conc, maxInst int) *instance.Target {
	spec := duct.Function{Name: "hammer", Runtime: duct.RuntimeImage, Command: []string{serverBin},
		Concurrency: conc, MaxInstances: maxInst}.WithDefaults()
	return &instance.Target{
		Version: &duct.Version{Function: "hammer", Number: 1, Spec: spec,
			Run: duct.RunSpec{Protocol: duct.ProtocolPort, Command: []string{serverBin}}},
		Dir: filepath.Dir(serverBin),
	}
}

// TestHammer drives a pool from many goroutines at once, killing some
// instances as it goes, and checks the invariants: no instance holds more
// leases than its concurrency, the pool never has more than its maximum,
// every request is served, and everything stops at the end.
func TestHammer(t *testing.T) {
	const conc, maxInst, workers, rounds = 2, 4, 40, 25
	l := instance.New(instance.Config{StopGrace: 100 * time.Millisecond})
	defer l.Close()
	p := newPool(testTarget(conc, maxInst), Options{QueueTimeout: 30 * time.Second}, l,
		metrics.New().For("hammer"), nil, nil)
	var (
		inUse   sync.Map // instance id → *atomic.Int32
		maxSeen atomic.Int32
		served  atomic.Int32
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				r, s := p.Count()
				if n := int32(r + s); n > maxSeen.Load() {
					maxSeen.Store(n)
				}
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for range rounds {
				lease, err := p.Acquire(context.Background(), "")
				if err != nil {
					t.Error(err)
					return
				}
				c, _ := inUse.LoadOrStore(lease.Instance.ID, new(atomic.Int32))
				if n := c.(*atomic.Int32).Add(1); n > conc {
					t.Errorf("instance %s holds %d leases, concurrency %d", lease.Instance.ID, n, conc)
				}
				time.Sleep(time.Duration(rng.Intn(2000)) * time.Microsecond)
				c.(*atomic.Int32).Add(-1)
				served.Add(1)
				lease.Release(rng.Intn(20) == 0) // now and then, kill it
			}
		}()
	}
	wg.Wait()
	close(stop)
	if got := served.Load(); got != workers*rounds {
		t.Fatalf("served %d of %d", got, workers*rounds)
	}
	if m := maxSeen.Load(); m > maxInst {
		t.Fatalf("pool grew to %d instances, max %d", m, maxInst)
	}
	p.StopIdle()
	if r, s := p.Count(); r != 0 || s != 0 {
		t.Fatalf("after StopIdle: %d ready, %d starting", r, s)
	}
}

// TestRetireDrains: a retired pool refuses new leases, lets held ones
// finish, stops its instances and reports itself empty.
func TestRetireDrains(t *testing.T) {
	l := instance.New(instance.Config{StopGrace: 100 * time.Millisecond})
	defer l.Close()
	emptied := make(chan struct{})
	p := newPool(testTarget(1, 2), Options{}, l, metrics.New().For("hammer"), nil, func(*Pool) { close(emptied) })
	lease, err := p.Acquire(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	p.Retire()
	if _, err := p.Acquire(context.Background(), ""); err != ErrRetired {
		t.Fatalf("acquire on a retired pool: %v", err)
	}
	select {
	case <-emptied:
		t.Fatal("emptied while a lease is held")
	case <-time.After(50 * time.Millisecond):
	}
	lease.Release(false)
	select {
	case <-emptied:
	case <-time.After(5 * time.Second):
		t.Fatal("retired pool never emptied")
	}
	<-lease.Instance.Done()
}

// TestQueueTimeout: with the only slot held, a waiter gives up after the
// queue timeout with ErrOverloaded, and a cancelled waiter leaves quietly.
func TestQueueTimeout(t *testing.T) {
	l := instance.New(instance.Config{StopGrace: 100 * time.Millisecond})
	defer l.Close()
	p := newPool(testTarget(1, 1), Options{QueueTimeout: 100 * time.Millisecond}, l, metrics.New().For("hammer"), nil, nil)
	defer p.stopAll(time.Second)
	lease, err := p.Acquire(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Acquire(context.Background(), ""); !errors.Is(err, duct.ErrOverloaded) {
		t.Fatalf("waiter: %v, want ErrOverloaded", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := p.Acquire(ctx, ""); err != context.Canceled {
		t.Fatalf("cancelled waiter: %v", err)
	}
	lease.Release(false)
	if l2, err := p.Acquire(context.Background(), ""); err != nil {
		t.Fatalf("after release: %v", err)
	} else {
		l2.Release(false)
	}
}
