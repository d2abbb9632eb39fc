// Package store owns Duct's control-plane state on JetStream: function
// records and their versions in KV buckets (every change checked against
// the revision it read), build records, and content-addressed blobs
// (source bundles, artifacts) in an Object Store.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket names. They are part of the on-disk format: changing one loses
// data.
const (
	bucketFunctions = "duct-functions" // name → duct.FunctionState
	bucketVersions  = "duct-versions"  // name.N → duct.Version
	bucketBuilds    = "duct-builds"    // build key hex → BuildRecord
	bucketBlobs     = "duct-blobs"     // sha256-<hex> → bytes
)

// Store reads and writes control-plane state. It is safe for concurrent
// use; it holds no state of its own beyond the bucket handles.
type Store struct {
	functions jetstream.KeyValue
	versions  jetstream.KeyValue
	builds    jetstream.KeyValue
	blobs     jetstream.ObjectStore
	log       *slog.Logger
	now       func() time.Time
}

// Open creates the buckets it needs (or binds to existing ones).
func Open(ctx context.Context, b *broker.Broker, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{log: log, now: time.Now}
	kv := func(name, desc string) (jetstream.KeyValue, error) {
		kv, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      name,
			Description: desc,
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    b.Replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("store: bucket %s: %w", name, err)
		}
		return kv, nil
	}
	var err error
	if s.functions, err = kv(bucketFunctions, "Duct functions: which version serves"); err != nil {
		return nil, err
	}
	if s.versions, err = kv(bucketVersions, "Duct function versions"); err != nil {
		return nil, err
	}
	if s.builds, err = kv(bucketBuilds, "Duct build cache: build key to artifact"); err != nil {
		return nil, err
	}
	s.blobs, err = b.JS.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      bucketBlobs,
		Description: "Duct sources and artifacts, content-addressed",
		Storage:     jetstream.FileStorage,
		Replicas:    b.Replicas,
		Compression: true,
	})
	if err != nil {
		return nil, fmt.Errorf("store: bucket %s: %w", bucketBlobs, err)
	}
	return s, nil
}

func getJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string) (T, uint64, error) {
	var v T
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return v, 0, duct.ErrNotFound
	}
	if err != nil {
		return v, 0, err
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return v, 0, fmt.Errorf("decode %s/%s: %w", kv.Bucket(), key, err)
	}
	return v, e.Revision(), nil
}

// casJSON writes v at key if the key is still at rev (0: must not exist).
func casJSON(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64, v any) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		rev, err = kv.Create(ctx, key, b)
	} else {
		rev, err = kv.Update(ctx, key, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, duct.ErrConflict
	}
	return rev, err
}
