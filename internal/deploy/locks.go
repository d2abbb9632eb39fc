package deploy

import (
	"context"
	"sync"
)

// keyLocks is a set of locks by key, made on demand and dropped when no
// one holds or waits for them. The zero value is ready to use.
type keyLocks struct {
	mu sync.Mutex          // guards m
	m  map[string]*keyLock // by key; present while held or awaited
}

type keyLock struct {
	sem   chan struct{} // holds a token while locked
	users int           // holders and waiters; guarded by keyLocks.mu
}

// lock takes the lock of key, waiting for it until ctx ends. The returned
// unlock may be called more than once.
func (k *keyLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{sem: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.users++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if l.users--; l.users == 0 {
			delete(k.m, key)
		}
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-l.sem
			release()
		})
	}, nil
}
