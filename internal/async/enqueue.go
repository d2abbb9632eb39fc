package async

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/duct-dev/duct"
)

// Enqueue stores inv durably and returns the id to poll. The message goes
// first, the record second: a crash between the two leaves a message
// whose record the dispatcher creates, never a record that waits for a
// message that does not exist. Both are fsynced (unless the server runs
// with --no-sync) before Enqueue returns.
//
// With an idempotency key, the first submission of that key to that
// function within the window wins: later ones get its id and store
// nothing.
func (s *Service) Enqueue(ctx context.Context, inv *duct.QueuedInvocation) (string, error) {
	if err := duct.ValidateName(inv.Function); err != nil {
		return "", err
	}
	if !validID(inv.ID) {
		return "", duct.Invalid("id", "%q is not an invocation id", inv.ID)
	}
	data, err := encode(inv)
	if err != nil {
		return "", err
	}
	if most := s.cfg.Broker.Conn.MaxPayload(); int64(len(data)) > most {
		// An external NATS with a small max_payload (1 MiB by default).
		return "", fmt.Errorf("%w: the invocation takes %d bytes stored, and the broker accepts at most %d per message (raise max_payload)",
			duct.ErrTooLarge, len(data), most)
	}
	var release func()
	if inv.IdempotencyKey != "" {
		id, dup, rel, err := s.claim(ctx, inv)
		if err != nil || dup {
			return id, err
		}
		release = rel
	}
	msg := nats.NewMsg(subjectPrefix + inv.Function)
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, inv.ID)
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(streamName)); err != nil {
		if release != nil {
			release()
		}
		return "", fmt.Errorf("%w: store invocation: %v", duct.ErrUnavailable, err)
	}
	if err := s.create(ctx, newRecord(inv)); err != nil {
		// The invocation is queued and will run; only its record is
		// late. Say so rather than invite a second submission.
		s.log.Warn("async: invocation queued, its record not yet written", "invocation", inv.ID, "err", err)
	}
	s.wake(inv.Function)
	return inv.ID, nil
}

// claimStale is how old a claimed key whose record never appeared must be
// before another submission takes it over: the first submitter died
// between claiming and storing.
const claimStale = 10 * time.Second

// claim takes inv's idempotency key for inv.ID, or finds the invocation
// that holds it (dup). release gives the key back if storing fails.
func (s *Service) claim(ctx context.Context, inv *duct.QueuedInvocation) (id string, dup bool, release func(), err error) {
	key := idempotencyKey(inv.Function, inv.IdempotencyKey)
	for {
		rev, err := s.keys.Create(ctx, key, []byte(inv.ID))
		if err == nil {
			release = func() {
				ctx, cancel := storeCtx()
				defer cancel()
				_ = s.keys.Delete(ctx, key, jetstream.LastRevision(rev))
			}
			return inv.ID, false, release, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", false, nil, fmt.Errorf("%w: idempotency key: %v", duct.ErrUnavailable, err)
		}
		e, err := s.keys.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			continue // given back meanwhile: try again
		case err != nil:
			return "", false, nil, fmt.Errorf("%w: idempotency key: %v", duct.ErrUnavailable, err)
		}
		prior := string(e.Value())
		_, _, err = s.load(ctx, prior)
		switch {
		case err == nil:
			return prior, true, nil, nil
		case !errors.Is(err, duct.ErrNotFound):
			return "", false, nil, err
		case s.now().Sub(e.Created()) > claimStale:
			// Its submitter never stored it: take the key over.
			if rev, err := s.keys.Update(ctx, key, []byte(inv.ID), e.Revision()); err == nil {
				release = func() {
					ctx, cancel := storeCtx()
					defer cancel()
					_ = s.keys.Delete(ctx, key, jetstream.LastRevision(rev))
				}
				return inv.ID, false, release, nil
			}
			continue
		}
		// The first submission is being stored right now: wait for it.
		select {
		case <-ctx.Done():
			return "", false, nil, fmt.Errorf("%w: an invocation with this idempotency key is being stored; retry", duct.ErrConflict)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// idempotencyKey is the bucket key of a function's idempotency key: any
// text the caller chose, hashed into what a key may hold.
func idempotencyKey(function, key string) string {
	sum := sha256.Sum256([]byte(key))
	return function + "." + hex.EncodeToString(sum[:20])
}

// encode lays out a queued invocation as stored: its JSON without the
// body, a newline, then the body's bytes as they are (no base64 inflation
// on the fsynced path).
func encode(inv *duct.QueuedInvocation) ([]byte, error) {
	meta := *inv
	meta.Request.Body = nil
	j, err := json.Marshal(&meta)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(j)+1+len(inv.Request.Body))
	out = append(out, j...)
	out = append(out, '\n')
	return append(out, inv.Request.Body...), nil
}

// decode reads what encode wrote.
func decode(data []byte) (*duct.QueuedInvocation, error) {
	j, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return nil, errors.New("no header line")
	}
	var inv duct.QueuedInvocation
	if err := json.Unmarshal(j, &inv); err != nil {
		return nil, err
	}
	if len(body) > 0 {
		inv.Request.Body = bytes.Clone(body)
	}
	if !validID(inv.ID) || duct.ValidateName(inv.Function) != nil {
		return nil, fmt.Errorf("bad id %q or function %q", inv.ID, inv.Function)
	}
	return &inv, nil
}
