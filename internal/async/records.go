package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/duct-dev/duct"
)

// maxHistory bounds the attempts a record lists.
const maxHistory = 10

// load reads a record and its revision.
func (s *Service) load(ctx context.Context, id string) (duct.Invocation, uint64, error) {
	var rec duct.Invocation
	e, err := s.records.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return rec, 0, duct.ErrNotFound
	}
	if err != nil {
		return rec, 0, fmt.Errorf("%w: read invocation %s: %v", duct.ErrUnavailable, id, err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return rec, 0, fmt.Errorf("decode invocation %s: %w", id, err)
	}
	return rec, e.Revision(), nil
}

// newRecord is the record of an invocation nothing has tried yet.
func newRecord(inv *duct.QueuedInvocation) duct.Invocation {
	return duct.Invocation{
		ID: inv.ID, Function: inv.Function, Status: duct.InvocationQueued,
		Hops: inv.Hops, IdempotencyKey: inv.IdempotencyKey,
		Request:     duct.InvocationSummary{Method: inv.Request.Method, Path: inv.Request.Path, Query: inv.Request.Query},
		SubmittedAt: inv.SubmittedAt, UpdatedAt: inv.SubmittedAt,
	}
}

// create stores a new record; one already there (the dispatcher got to
// it first) is left as it is.
func (s *Service) create(ctx context.Context, rec duct.Invocation) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := s.records.Create(ctx, rec.ID, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%w: record invocation %s: %v", duct.ErrUnavailable, rec.ID, err)
	}
	return nil
}

// record reads the record of a delivered invocation, creating it when the
// submission did not get to (it stored the message, then failed).
func (s *Service) record(ctx context.Context, inv *duct.QueuedInvocation) (duct.Invocation, error) {
	rec, _, err := s.load(ctx, inv.ID)
	if !errors.Is(err, duct.ErrNotFound) {
		return rec, err
	}
	if err := s.create(ctx, newRecord(inv)); err != nil {
		return rec, err
	}
	rec, _, err = s.load(ctx, inv.ID)
	return rec, err
}

// save writes a record. One node holds an invocation at a time (the
// queue gives it to another only when the first stops showing signs of
// life), so the last write wins.
func (s *Service) save(ctx context.Context, rec *duct.Invocation) error {
	rec.UpdatedAt = s.now().UTC()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := s.records.Put(ctx, rec.ID, b); err != nil {
		return fmt.Errorf("%w: record invocation %s: %v", duct.ErrUnavailable, rec.ID, err)
	}
	return nil
}

// addHistory appends an attempt, keeping the last maxHistory.
func addHistory(rec *duct.Invocation, a duct.InvocationAttempt) {
	rec.History = append(rec.History, a)
	if n := len(rec.History); n > maxHistory {
		rec.History = append(rec.History[:0], rec.History[n-maxHistory:]...)
	}
}

// storeTimeout bounds one store operation of the dispatcher.
const storeTimeout = 10 * time.Second

// storeCtx is a context for store operations that must happen even as
// the service stops (putting an invocation back).
func storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}
