package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/duct-dev/duct"
	"github.com/nats-io/nats.go/jetstream"
)

// BucketMarks holds one Mark per schedule trigger, keyed
// FUNCTION.TRIGGER-ID. Part of the on-disk format.
const BucketMarks = "duct-schedules"

// Mark is what the store keeps for a schedule trigger: the last tick a
// node claimed, and whether its invocation was handed over. Every node
// reads it before firing and claims a tick with a write checked against
// the revision it read, so a tick fires once however many nodes run the
// schedule and whenever they restart.
type Mark struct {
	// Tick is the last tick claimed; for a trigger that has not fired
	// yet, the time a node first saw it (no tick at or before it fires).
	Tick time.Time `json:"tick"`
	// Claimed is when the claim was made, by Node's clock.
	Claimed time.Time `json:"claimed"`
	Node    string    `json:"node,omitempty"`
	// Fired is set once the tick's invocation is queued. A claim left
	// unconfirmed past the claim lease (its node died between claiming
	// and queueing) is fired again, with the same idempotency key.
	Fired      bool   `json:"fired"`
	Invocation string `json:"invocation,omitempty"`
}

// Marks stores schedule marks in a KV bucket.
type Marks struct{ kv jetstream.KeyValue }

// OpenMarks creates the marks bucket (or binds to it).
func OpenMarks(ctx context.Context, js jetstream.JetStream, replicas int) (*Marks, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketMarks,
		Description: "Duct schedule triggers: the last tick fired",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("trigger: bucket %s: %w", BucketMarks, err)
	}
	return &Marks{kv: kv}, nil
}

func markKey(fn, trigger string) string { return fn + "." + trigger }

// Get returns the mark of a trigger and its revision; duct.ErrNotFound
// when there is none.
func (m *Marks) Get(ctx context.Context, fn, trigger string) (Mark, uint64, error) {
	var mk Mark
	e, err := m.kv.Get(ctx, markKey(fn, trigger))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return mk, 0, duct.ErrNotFound
	}
	if err != nil {
		return mk, 0, err
	}
	if err := json.Unmarshal(e.Value(), &mk); err != nil {
		return mk, 0, fmt.Errorf("schedule mark %s: %w", e.Key(), err)
	}
	return mk, e.Revision(), nil
}

// put writes mk if the mark is still at rev (0: if there is none), or
// fails with duct.ErrConflict.
func (m *Marks) put(ctx context.Context, fn, trigger string, mk Mark, rev uint64) (uint64, error) {
	b, err := json.Marshal(mk)
	if err != nil {
		return 0, err
	}
	key := markKey(fn, trigger)
	if rev == 0 {
		rev, err = m.kv.Create(ctx, key, b)
	} else {
		rev, err = m.kv.Update(ctx, key, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, duct.ErrConflict
	}
	return rev, err
}

// Delete forgets a trigger's mark: the trigger is gone. Deleting none is
// not an error.
func (m *Marks) Delete(ctx context.Context, fn, trigger string) error {
	err := m.kv.Purge(ctx, markKey(fn, trigger))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// keys lists the marks as (function, trigger) pairs.
func (m *Marks) keys(ctx context.Context) ([][2]string, error) {
	lister, err := m.kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var out [][2]string
	for k := range lister.Keys() {
		for i := 0; i < len(k); i++ {
			if k[i] == '.' {
				out = append(out, [2]string{k[:i], k[i+1:]})
				break
			}
		}
	}
	return out, nil
}
