package async

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/duct-dev/duct"
)

// unknownGrace is how long after its submission an invocation of a
// function this node does not serve waits for it to appear (a deploy
// reaches every node within moments) before it fails.
const unknownGrace = 30 * time.Second

// handle takes one delivered invocation to its next state: run an
// attempt, then settle it (ack), or put it back in the queue with a delay
// (nak). The record says where it stands; the message only wakes a node
// up.
func (s *Service) handle(runCtx context.Context, msg jetstream.Msg) {
	inv, err := decode(msg.Data())
	if err != nil {
		s.log.Error("async: dropping an unreadable invocation", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	ctx, cancel := storeCtx()
	defer cancel()
	rec, err := s.record(ctx, inv)
	if err != nil {
		s.log.Warn("async: cannot read an invocation's record; later", "invocation", inv.ID, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if rec.Status.Final() {
		// Settled before, but the ack was lost (or the destination is
		// still to send).
		s.finishDestination(ctx, inv, &rec)
		_ = msg.Ack()
		return
	}
	now := s.now()
	if wait := rec.NextAttemptAt.Sub(now); wait > 10*time.Millisecond {
		_ = msg.NakWithDelay(wait) // woken up early (a restart, say)
		return
	}
	v := s.runner.Version(inv.Function)
	if v == nil {
		if now.Sub(inv.SubmittedAt) < unknownGrace {
			// Deployed a moment ago, and this node does not serve it
			// yet? Give it time before deciding it is gone.
			_ = msg.NakWithDelay(time.Second)
			return
		}
		s.conclude(ctx, msg, inv, &rec, policy{}, duct.InvocationFailed, "no function named "+strconv.Quote(inv.Function))
		return
	}
	pol := policyOf(v.Spec, s.cfg.MinEventAge)
	rec.MaxAttempts = pol.maxAttempts
	if rec.Status == duct.InvocationRunning {
		// The node running the last attempt stopped without a word.
		addHistory(&rec, duct.InvocationAttempt{Number: rec.Attempts, Start: rec.UpdatedAt, Outcome: duct.OutcomeCrash,
			Error: "interrupted: the node running this attempt stopped"})
		rec.Error = "attempt " + strconv.Itoa(rec.Attempts) + " was interrupted: the node running it stopped"
	}
	expires := inv.SubmittedAt.Add(pol.maxAge)
	switch {
	case now.After(expires):
		s.conclude(ctx, msg, inv, &rec, pol, duct.InvocationFailed, fmt.Sprintf("expired: not done within its maximum event age of %s", pol.maxAge))
		return
	case rec.Attempts >= pol.maxAttempts:
		s.conclude(ctx, msg, inv, &rec, pol, duct.InvocationFailed, fmt.Sprintf("no attempts left (%d of %d made)", rec.Attempts, pol.maxAttempts))
		return
	}
	rec.Attempts++
	rec.Status = duct.InvocationRunning
	rec.NextAttemptAt = time.Time{}
	rec.Version = v.Number
	start := s.now().UTC()
	if rec.StartedAt.IsZero() {
		rec.StartedAt = start
	}
	if err := s.save(ctx, &rec); err != nil {
		s.log.Warn("async: cannot record an attempt's start; later", "invocation", inv.ID, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	rw := newRecorder(s.cfg.MaxResult)
	rep, err := s.attempt(runCtx, msg, inv, rw)
	ctx, cancel = storeCtx() // the attempt may have outlasted the first
	defer cancel()
	if rep != nil {
		addHistory(&rec, duct.InvocationAttempt{Number: rec.Attempts, Start: rep.Start.UTC(), Duration: rep.Duration,
			Version: rep.Version, Instance: rep.Instance, Status: rep.Status, Outcome: rep.Outcome, Error: rep.Error})
	}
	rec.Result = rw.result()
	rec.Error = attemptError(rep, err)

	switch verdict := classify(rep, err); verdict {
	case succeed:
		rec.Error = ""
		s.conclude(ctx, msg, inv, &rec, pol, duct.InvocationSucceeded, "")
	case fail:
		s.conclude(ctx, msg, inv, &rec, pol, duct.InvocationFailed, rec.Error)
	case throttle:
		rec.Attempts--
		rec.Throttled++
		s.later(ctx, msg, &rec, throttleDelay(s.cfg.ThrottleDelay, s.cfg.MaxThrottleDelay, rec.Throttled), "no instance free")
	case requeue:
		if rep == nil || rep.Instance == "" {
			rec.Attempts-- // it never reached the function
		}
		s.later(ctx, msg, &rec, 0, "this node is stopping")
	case retry:
		if rec.Attempts >= pol.maxAttempts {
			s.conclude(ctx, msg, inv, &rec, pol, duct.InvocationFailed, rec.Error)
			return
		}
		delay := retryDelay(s.cfg.RetryDelay, rec.Attempts)
		if s.now().Add(delay).After(expires) {
			s.conclude(ctx, msg, inv, &rec, pol, duct.InvocationFailed,
				fmt.Sprintf("%s; no retry: the next (in %s) would start after its maximum event age of %s", rec.Error, delay, pol.maxAge))
			return
		}
		s.later(ctx, msg, &rec, delay, fmt.Sprintf("attempt %d of %d failed: %s", rec.Attempts, pol.maxAttempts, rec.Error))
	}
}

// attempt runs one attempt, telling the queue the node is alive while it
// runs so that the invocation is not given to another.
func (s *Service) attempt(ctx context.Context, msg jetstream.Msg, inv *duct.QueuedInvocation, w http.ResponseWriter) (*duct.Report, error) {
	stop := make(chan struct{})
	beat := make(chan struct{})
	go func() {
		defer close(beat)
		t := time.NewTicker(max(s.cfg.AckWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	defer func() {
		close(stop)
		<-beat
	}()
	return s.runner.Attempt(ctx, w, inv)
}

// later puts the invocation back in the queue for delay.
func (s *Service) later(ctx context.Context, msg jetstream.Msg, rec *duct.Invocation, delay time.Duration, why string) {
	rec.Status = duct.InvocationQueued
	if delay > 0 {
		rec.NextAttemptAt = s.now().Add(delay).UTC()
	}
	if err := s.save(ctx, rec); err != nil {
		s.log.Warn("async: cannot record a retry", "invocation", rec.ID, "err", err)
	}
	if delay > 0 {
		s.platform(rec, fmt.Sprintf("invocation %s: %s; next attempt in %s", rec.ID, why, delay.Round(time.Millisecond)))
	}
	_ = msg.NakWithDelay(delay)
}

// conclude settles an invocation: its final record, its destination,
// then the ack that removes it from the queue. A crash before the ack
// delivers it again, and handle sees the final record.
func (s *Service) conclude(ctx context.Context, msg jetstream.Msg, inv *duct.QueuedInvocation, rec *duct.Invocation, pol policy, status duct.InvocationStatus, why string) {
	rec.Status = status
	rec.Error = firstKiB(why)
	rec.NextAttemptAt = time.Time{}
	rec.FinishedAt = s.now().UTC()
	topic, cond := pol.onFailure, "failure"
	if status == duct.InvocationSucceeded {
		topic, cond = pol.onSuccess, "success"
	}
	if topic != "" {
		rec.Destination = &duct.DestinationDelivery{Condition: cond, Topic: topic, State: "pending"}
	}
	if err := s.save(ctx, rec); err != nil {
		// Not settled: try again later rather than lose the outcome.
		s.log.Warn("async: cannot record an outcome; later", "invocation", rec.ID, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if status == duct.InvocationSucceeded {
		s.platform(rec, fmt.Sprintf("invocation %s succeeded (attempt %d)", rec.ID, rec.Attempts))
	} else {
		s.platform(rec, fmt.Sprintf("invocation %s failed after %d attempt(s): %s", rec.ID, rec.Attempts, rec.Error))
	}
	s.finishDestination(ctx, inv, rec)
	if err := msg.DoubleAck(ctx); err != nil {
		s.log.Warn("async: ack", "invocation", rec.ID, "err", err)
	}
}

// attemptError says why an attempt failed, empty when it did not.
func attemptError(rep *duct.Report, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case rep.Error != "":
		return firstKiB(rep.Error)
	case rep.Status >= 400:
		return "the function answered " + strconv.Itoa(rep.Status) + " " + http.StatusText(rep.Status)
	}
	return ""
}

// firstKiB keeps the first KiB of an error message.
func firstKiB(s string) string {
	if len(s) > 1024 {
		return s[:1024] + "…"
	}
	return s
}

// platform writes a line about an invocation to its function's log.
func (s *Service) platform(rec *duct.Invocation, msg string) {
	if s.cfg.Logs == nil {
		return
	}
	s.cfg.Logs.Log(duct.LogEntry{Time: s.now().UTC(), Function: rec.Function, Version: rec.Version,
		Invocation: rec.ID, Stream: duct.LogPlatform, Message: msg})
}
