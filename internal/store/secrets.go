package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
	"github.com/nats-io/nats.go/jetstream"
)

// bucketSecrets holds sealed secret values by name. Part of the on-disk
// format.
const bucketSecrets = "duct-secrets"

// SecretRecord is a stored secret. Sealed is the value as
// internal/secrets encrypted it: the store never sees a plaintext.
type SecretRecord struct {
	Name      string    `json:"name"`
	Sealed    []byte    `json:"sealed"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Info is the record as the API shows it: without the value.
func (r SecretRecord) Info() duct.SecretInfo {
	return duct.SecretInfo{Name: r.Name, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// Secrets stores sealed secrets. It is safe for concurrent use.
type Secrets struct {
	kv  jetstream.KeyValue
	log *slog.Logger
	now func() time.Time
}

// OpenSecrets creates the secrets bucket (or binds to it).
func OpenSecrets(ctx context.Context, b *broker.Broker, log *slog.Logger) (*Secrets, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := openKV(ctx, b, bucketSecrets, "Duct secrets, encrypted by the server's secret key")
	if err != nil {
		return nil, err
	}
	return &Secrets{kv: kv, log: log, now: time.Now}, nil
}

// Put stores a sealed value under name, creating the secret or replacing
// its value (its creation time stays). created reports which.
func (s *Secrets) Put(ctx context.Context, name string, sealed []byte) (rec SecretRecord, created bool, err error) {
	if !ValidKey(name) {
		return rec, false, duct.Invalid("secret name", "%q", name)
	}
	for range maxCASAttempts {
		cur, rev, err := getJSON[SecretRecord](ctx, s.kv, name)
		if err != nil && !errors.Is(err, duct.ErrNotFound) {
			return rec, false, fmt.Errorf("secret %q: %w", name, err)
		}
		now := s.now().UTC()
		rec = SecretRecord{Name: name, Sealed: sealed, CreatedAt: now, UpdatedAt: now}
		if rev != 0 {
			rec.CreatedAt = cur.CreatedAt
		}
		_, err = casJSON(ctx, s.kv, name, rev, rec)
		if errors.Is(err, duct.ErrConflict) {
			continue
		}
		if err != nil {
			return rec, false, fmt.Errorf("secret %q: %w", name, err)
		}
		return rec, rev == 0, nil
	}
	return rec, false, fmt.Errorf("secret %q: too many concurrent changes: %w", name, duct.ErrConflict)
}

// Get returns the secret called name, or duct.ErrNotFound.
func (s *Secrets) Get(ctx context.Context, name string) (SecretRecord, error) {
	if !ValidKey(name) {
		return SecretRecord{}, fmt.Errorf("secret %q: %w", name, duct.ErrNotFound)
	}
	r, _, err := getJSON[SecretRecord](ctx, s.kv, name)
	if err != nil {
		return r, fmt.Errorf("secret %q: %w", name, err)
	}
	return r, nil
}

// List returns every secret, sorted by name.
func (s *Secrets) List(ctx context.Context) ([]SecretRecord, error) {
	names, err := keys(ctx, s.kv)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	out := make([]SecretRecord, 0, len(names))
	for _, n := range names {
		r, _, err := getJSON[SecretRecord](ctx, s.kv, n)
		if errors.Is(err, duct.ErrNotFound) {
			continue // deleted between list and get
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Delete removes the secret called name: duct.ErrNotFound when there is
// none.
func (s *Secrets) Delete(ctx context.Context, name string) error {
	if !ValidKey(name) {
		return fmt.Errorf("secret %q: %w", name, duct.ErrNotFound)
	}
	_, rev, err := getJSON[SecretRecord](ctx, s.kv, name)
	if err != nil {
		return fmt.Errorf("secret %q: %w", name, err)
	}
	// Purge, not delete: the old sealed value goes from the stream too.
	if err := s.kv.Purge(ctx, name, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("delete secret %q: %w", name, err)
	}
	return nil
}

// Watch sends the name of every secret set or deleted from now on, until
// ctx ends.
func (s *Secrets) Watch(ctx context.Context) (<-chan string, error) { return watchChanges(ctx, s.kv) }
