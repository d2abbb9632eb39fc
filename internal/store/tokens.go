package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
	"github.com/nats-io/nats.go/jetstream"
)

// bucketTokens holds API tokens by id. Part of the on-disk format.
const bucketTokens = "duct-tokens"

// TokenRecord is a stored API token: who it is and the SHA-256 of its
// secret part, never the secret itself.
type TokenRecord struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      duct.Role `json:"role"`
	SHA256    string    `json:"sha256"` // hex
	CreatedAt time.Time `json:"createdAt"`
	CreatedBy string    `json:"createdBy,omitempty"`
}

// Info is the record as the API shows it.
func (r TokenRecord) Info() duct.TokenInfo {
	return duct.TokenInfo{ID: r.ID, Name: r.Name, Role: r.Role, CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy}
}

// Tokens stores API tokens. It is safe for concurrent use.
type Tokens struct {
	kv  jetstream.KeyValue
	log *slog.Logger
}

// OpenTokens creates the tokens bucket (or binds to it).
func OpenTokens(ctx context.Context, b *broker.Broker, log *slog.Logger) (*Tokens, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := openKV(ctx, b, bucketTokens, "Duct API tokens: id to role and secret hash")
	if err != nil {
		return nil, err
	}
	return &Tokens{kv: kv, log: log}, nil
}

// Create records a new token; an id already taken is duct.ErrConflict.
func (t *Tokens) Create(ctx context.Context, r TokenRecord) error {
	if !ValidKey(r.ID) {
		return duct.Invalid("token id", "%q", r.ID)
	}
	if _, err := casJSON(ctx, t.kv, r.ID, 0, r); err != nil {
		return fmt.Errorf("create token %s: %w", r.ID, err)
	}
	return nil
}

// Get returns the token with id, or duct.ErrNotFound.
func (t *Tokens) Get(ctx context.Context, id string) (TokenRecord, error) {
	if !ValidKey(id) {
		return TokenRecord{}, fmt.Errorf("token %q: %w", id, duct.ErrNotFound)
	}
	r, _, err := getJSON[TokenRecord](ctx, t.kv, id)
	if err != nil {
		return r, fmt.Errorf("token %q: %w", id, err)
	}
	return r, nil
}

// List returns every token, oldest first.
func (t *Tokens) List(ctx context.Context) ([]TokenRecord, error) {
	ids, err := keys(ctx, t.kv)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]TokenRecord, 0, len(ids))
	for _, id := range ids {
		r, _, err := getJSON[TokenRecord](ctx, t.kv, id)
		if errors.Is(err, duct.ErrNotFound) {
			continue // revoked between list and get
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Any reports whether at least one token is stored.
func (t *Tokens) Any(ctx context.Context) (bool, error) {
	ids, err := keys(ctx, t.kv)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return false, nil
	}
	return len(ids) > 0, err
}

// Delete revokes the token with id: duct.ErrNotFound when there is none.
func (t *Tokens) Delete(ctx context.Context, id string) error {
	if !ValidKey(id) {
		return fmt.Errorf("token %q: %w", id, duct.ErrNotFound)
	}
	_, rev, err := getJSON[TokenRecord](ctx, t.kv, id)
	if err != nil {
		return fmt.Errorf("token %q: %w", id, err)
	}
	if err := t.kv.Delete(ctx, id, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("revoke token %q: %w", id, err)
	}
	return nil
}

// Watch sends the id of every token created, changed or revoked from now
// on, until ctx ends.
func (t *Tokens) Watch(ctx context.Context) (<-chan string, error) { return watchChanges(ctx, t.kv) }
