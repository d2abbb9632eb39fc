package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/duct-dev/duct/internal/broker"
	"github.com/nats-io/nats.go/jetstream"
)

// openKV creates a KV bucket holding one revision per key (or binds to
// the existing one), replicated as the broker says.
func openKV(ctx context.Context, b *broker.Broker, name, desc string) (jetstream.KeyValue, error) {
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

// watchChanges sends the key of every change to kv made after the call
// (puts and deletes alike), until ctx ends.
func watchChanges(ctx context.Context, kv jetstream.KeyValue) (<-chan string, error) {
	w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", kv.Bucket(), err)
	}
	out := make(chan string, 64)
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
				if e == nil {
					continue
				}
				select {
				case out <- e.Key():
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// keys lists a bucket's keys, sorted and once each (a listing may repeat
// keys written meanwhile); none is not an error.
func keys(ctx context.Context, kv jetstream.KeyValue) ([]string, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range lister.Keys() {
		out = append(out, k)
	}
	slices.Sort(out)
	return slices.Compact(out), ctx.Err()
}
