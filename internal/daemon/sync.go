package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/instance"
	"github.com/duct-dev/duct/internal/store"
)

// syncAll makes the data plane serve every function's active version.
func (d *Daemon) syncAll(ctx context.Context) error {
	fns, err := d.store.Functions(ctx)
	if err != nil {
		return fmt.Errorf("load functions: %w", err)
	}
	for _, f := range fns {
		if err := d.apply(ctx, f.Name); err != nil {
			// One broken function must not keep the others down.
			d.log.Error("cannot serve function", "function", f.Name, "err", err)
		}
	}
	return nil
}

// apply makes this node serve the active version of name (or stop serving
// it, when it is gone). It is idempotent.
func (d *Daemon) apply(ctx context.Context, name string) error {
	// One apply per function at a time: two racing could otherwise read
	// versions in one order and set them in the other.
	unlock := d.applyLocks.lock(name)
	defer unlock()
	_, v, err := d.store.ActiveVersion(ctx, name)
	if errors.Is(err, duct.ErrNotFound) {
		d.remove(name)
		return nil
	}
	if err != nil {
		return err
	}
	dir, err := d.cache.Ensure(ctx, v.ArtifactDigest)
	if err != nil {
		return err
	}
	t, err := d.target(ctx, &v, dir)
	if err != nil {
		return err
	}
	d.launcher.Warm(v.Spec)
	d.pools.Set(t)
	d.triggersApplied(ctx, &v)
	d.mu.Lock()
	d.applied[name] = v.Number
	d.uses[name] = v.Spec.Secrets
	d.mu.Unlock()
	return nil
}

// target is what instances of v start from: its artifact in dir, its
// environment, and each secret it references, both as the variable of
// that name and as a file in /run/secrets. A secret deleted since the
// deploy (with force) is left out, with a warning.
func (d *Daemon) target(ctx context.Context, v *duct.Version, dir string) (*instance.Target, error) {
	t := &instance.Target{Version: v, Dir: dir, Env: v.Spec.Env}
	if len(v.Spec.Secrets) == 0 {
		return t, nil
	}
	values, missing, err := d.secrets.Values(ctx, v.Spec.Secrets)
	if err != nil {
		return nil, fmt.Errorf("function %q: %w", v.Function, err)
	}
	if len(missing) > 0 {
		d.log.Warn("function references secrets that do not exist: its instances start without them",
			"function", v.Function, "secrets", missing)
	}
	t.Env = make(map[string]string, len(v.Spec.Env)+len(values))
	maps.Copy(t.Env, v.Spec.Env)
	t.Files = make(map[string][]byte, len(values))
	for name, val := range values {
		t.Env[name] = string(val)
		t.Files[name] = val
	}
	return t, nil
}

func (d *Daemon) remove(name string) {
	d.triggersRemoved(name)
	d.pools.Remove(name)
	d.mu.Lock()
	delete(d.applied, name)
	delete(d.uses, name)
	d.mu.Unlock()
	d.metrics.Forget(name)
}

// secretChanged re-applies the functions this node serves that reference
// the secret name, so that their new instances get its new value (or go
// without it, once it is deleted). Warm instances finish what they serve
// and are replaced.
func (d *Daemon) secretChanged(ctx context.Context, name string) error {
	var fns []string
	d.mu.Lock()
	for fn, secrets := range d.uses {
		if slices.Contains(secrets, name) {
			fns = append(fns, fn)
		}
	}
	d.mu.Unlock()
	var errs []error
	for _, fn := range fns {
		if err := d.apply(ctx, fn); err != nil {
			errs = append(errs, fmt.Errorf("apply secret %q to function %q: %w", name, fn, err))
		}
	}
	return errors.Join(errs...)
}

// followSecrets applies secret changes made on any node.
func (d *Daemon) followSecrets(ctx context.Context, names <-chan string) {
	for name := range names {
		if err := d.secretChanged(ctx, name); err != nil && ctx.Err() == nil {
			d.log.Warn("apply secret change", "secret", name, "err", err)
		}
	}
}

// follow applies changes other nodes (or this one) make to the store.
func (d *Daemon) follow(ctx context.Context, events <-chan *store.FunctionEvent) {
	for ev := range events {
		if ev == nil {
			continue
		}
		if ev.Deleted {
			d.remove(ev.Name)
			continue
		}
		d.mu.Lock()
		cur := d.applied[ev.Name]
		d.mu.Unlock()
		if ev.State.Active == 0 || ev.State.Active == cur {
			continue
		}
		for attempt := 0; ; attempt++ {
			err := d.apply(ctx, ev.Name)
			if err == nil || ctx.Err() != nil {
				break
			}
			d.log.Warn("apply function change", "function", ev.Name, "attempt", attempt+1, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Duration(attempt+1)*time.Second, 30*time.Second)):
			}
		}
	}
}

// checker proves a freshly built artifact starts, before it is recorded:
// with its secrets, as it will serve.
type checker struct {
	l      *instance.Launcher
	target func(ctx context.Context, v *duct.Version, dir string) (*instance.Target, error)
}

func (c checker) Check(ctx context.Context, v *duct.Version, dir string) error {
	t, err := c.target(ctx, v, dir)
	if err != nil {
		return err
	}
	c.l.Warm(v.Spec)
	inst, err := c.l.Launch(ctx, t)
	if err != nil {
		return err
	}
	inst.Kill("deploy check done")
	return nil
}

// keyedMutex serialises work per key.
type keyedMutex struct {
	mu    sync.Mutex // guards locks
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
