package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/duct-dev/duct"
	"github.com/nats-io/nats.go/jetstream"
)

// maxCASAttempts bounds the read-modify-write retries when other writers
// keep winning; beyond it the caller gets duct.ErrConflict.
const maxCASAttempts = 32

// Function returns a function's state.
func (s *Store) Function(ctx context.Context, name string) (duct.FunctionState, error) {
	st, _, err := getJSON[duct.FunctionState](ctx, s.functions, name)
	if err != nil {
		return st, fmt.Errorf("function %q: %w", name, err)
	}
	return st, nil
}

// Functions lists every function, sorted by name.
func (s *Store) Functions(ctx context.Context) ([]duct.FunctionState, error) {
	lister, err := s.functions.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var out []duct.FunctionState
	for key := range lister.Keys() {
		st, _, err := getJSON[duct.FunctionState](ctx, s.functions, key)
		if errors.Is(err, duct.ErrNotFound) {
			continue // deleted between list and get
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// AddVersion records v as the next version of its function and makes it
// active. The version number is reserved with a revision-checked write,
// so concurrent deploys get distinct numbers and neither is lost; the one
// that finishes last serves. A crash between reserving and recording
// leaves a gap in the numbering, never a dangling active version.
func (s *Store) AddVersion(ctx context.Context, v duct.Version) (duct.Version, error) {
	name := v.Function
	now := s.now().UTC()
	// Reserve the number.
	var n int
	err := s.updateFunction(ctx, name, true, func(st *duct.FunctionState) error {
		if st.CreatedAt.IsZero() {
			st.Name, st.CreatedAt = name, now
		}
		st.Latest++
		n = st.Latest
		return nil
	})
	if err != nil {
		return v, err
	}
	v.Number = n
	v.CreatedAt = now
	if _, err := casJSON(ctx, s.versions, versionKey(name, n), 0, v); err != nil {
		return v, fmt.Errorf("record version %d of %q: %w", n, name, err)
	}
	// Activate it.
	err = s.updateFunction(ctx, name, false, func(st *duct.FunctionState) error {
		st.Active = n
		st.UpdatedAt = now
		return nil
	})
	return v, err
}

// Activate makes version n of name the serving one (rollback).
func (s *Store) Activate(ctx context.Context, name string, n int) (duct.Version, error) {
	v, err := s.Version(ctx, name, n)
	if err != nil {
		return v, err
	}
	err = s.updateFunction(ctx, name, false, func(st *duct.FunctionState) error {
		st.Active = n
		st.UpdatedAt = s.now().UTC()
		return nil
	})
	return v, err
}

// updateFunction applies fn to the function's state with a revision check,
// retrying on conflict. create allows the function not to exist yet.
func (s *Store) updateFunction(ctx context.Context, name string, create bool, fn func(*duct.FunctionState) error) error {
	for range maxCASAttempts {
		st, rev, err := getJSON[duct.FunctionState](ctx, s.functions, name)
		if errors.Is(err, duct.ErrNotFound) && !create {
			return fmt.Errorf("function %q: %w", name, duct.ErrNotFound)
		}
		if err != nil && !errors.Is(err, duct.ErrNotFound) {
			return err
		}
		if err := fn(&st); err != nil {
			return err
		}
		_, err = casJSON(ctx, s.functions, name, rev, st)
		if errors.Is(err, duct.ErrConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("function %q: %w: too many concurrent changes", name, duct.ErrConflict)
}

// Version returns version n of a function.
func (s *Store) Version(ctx context.Context, name string, n int) (duct.Version, error) {
	v, _, err := getJSON[duct.Version](ctx, s.versions, versionKey(name, n))
	if err != nil {
		return v, fmt.Errorf("version %d of %q: %w", n, name, err)
	}
	return v, nil
}

// ActiveVersion returns the serving version of a function.
func (s *Store) ActiveVersion(ctx context.Context, name string) (duct.FunctionState, duct.Version, error) {
	st, err := s.Function(ctx, name)
	if err != nil {
		return st, duct.Version{}, err
	}
	if st.Active == 0 {
		return st, duct.Version{}, fmt.Errorf("function %q has no active version: %w", name, duct.ErrNotFound)
	}
	v, err := s.Version(ctx, name, st.Active)
	return st, v, err
}

// Versions lists a function's versions, oldest first.
func (s *Store) Versions(ctx context.Context, name string) ([]duct.Version, error) {
	keys, err := s.versionKeys(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]duct.Version, 0, len(keys))
	for _, k := range keys {
		v, _, err := getJSON[duct.Version](ctx, s.versions, k)
		if errors.Is(err, duct.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

func (s *Store) versionKeys(ctx context.Context, name string) ([]string, error) {
	lister, err := s.versions.ListKeysFiltered(ctx, name+".*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

// DeleteFunction removes a function and all its versions. Blobs stay: other
// versions or functions may share them.
func (s *Store) DeleteFunction(ctx context.Context, name string) error {
	if _, err := s.Function(ctx, name); err != nil {
		return err
	}
	if err := s.functions.Purge(ctx, name); err != nil {
		return fmt.Errorf("delete function %q: %w", name, err)
	}
	keys, err := s.versionKeys(ctx, name)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.versions.Purge(ctx, k); err != nil {
			return fmt.Errorf("delete %s: %w", k, err)
		}
	}
	return nil
}

func versionKey(name string, n int) string { return name + "." + strconv.Itoa(n) }

// FunctionEvent is a change to a function's state seen by Watch.
type FunctionEvent struct {
	Name    string
	Deleted bool
	State   duct.FunctionState
}

// Watch sends the current state of every function, then every change,
// until ctx ends. A nil event marks the end of the initial state.
func (s *Store) Watch(ctx context.Context) (<-chan *FunctionEvent, error) {
	w, err := s.functions.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch functions: %w", err)
	}
	out := make(chan *FunctionEvent, 64)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				var ev *FunctionEvent
				if e != nil {
					ev = &FunctionEvent{Name: e.Key()}
					if e.Operation() != jetstream.KeyValuePut {
						ev.Deleted = true
					} else if err := jsonUnmarshal(e.Value(), &ev.State); err != nil {
						s.log.Error("watch: bad function record", "key", e.Key(), "err", err)
						continue
					}
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// ValidKey reports whether name can be used as a store key; callers
// validate names first, this guards the store's own invariant.
func ValidKey(name string) bool { return name != "" && !strings.ContainsAny(name, ".*> \t") }
