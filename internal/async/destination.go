package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/duct-dev/duct"
)

// Attributes of the messages sent to destination topics.
const (
	AttrInvocation = "duct-invocation"
	AttrFunction   = "duct-function"
	AttrCondition  = "duct-condition" // success or failure
)

// Outcome is the JSON body of a message sent to a destination topic.
type Outcome struct {
	ID          string                 `json:"id"`
	Function    string                 `json:"function"`
	Condition   string                 `json:"condition"` // success or failure
	Status      duct.InvocationStatus  `json:"status"`
	Attempts    int                    `json:"attempts"`
	SubmittedAt time.Time              `json:"submittedAt"`
	FinishedAt  time.Time              `json:"finishedAt"`
	Request     duct.InvocationRequest `json:"request"`
	// LastStatus is the HTTP status of the last attempt; 0 when none ran.
	LastStatus int `json:"lastStatus,omitempty"`
	// Error is the first KiB of why the invocation failed.
	Error string `json:"error,omitempty"`
	// Response is the last attempt's answer, as the record keeps it.
	Response *duct.InvocationResult `json:"response,omitempty"`
}

// publishTries bounds the attempts to publish an outcome; a topic that
// does not exist is not tried again.
const publishTries = 3

// finishDestination sends a settled invocation's outcome to its
// destination topic if that is still pending, and records what came of
// it.
func (s *Service) finishDestination(ctx context.Context, inv *duct.QueuedInvocation, rec *duct.Invocation) {
	d := rec.Destination
	if d == nil || d.State != "pending" {
		return
	}
	id, err := s.publish(ctx, inv, rec)
	if err != nil {
		d.State, d.Error = "failed", firstKiB(err.Error())
		s.log.Warn("async: outcome not sent to its destination", "invocation", rec.ID, "topic", d.Topic, "err", err)
		s.platform(rec, fmt.Sprintf("invocation %s: outcome not sent to topic %q: %s", rec.ID, d.Topic, d.Error))
	} else {
		d.State, d.MessageID = "published", id
	}
	if err := s.save(ctx, rec); err != nil {
		s.log.Warn("async: cannot record a destination", "invocation", rec.ID, "err", err)
	}
}

func (s *Service) publish(ctx context.Context, inv *duct.QueuedInvocation, rec *duct.Invocation) (string, error) {
	d := rec.Destination
	if s.topics == nil {
		return "", errors.New("this server has no Pub/Sub broker to publish to")
	}
	out := Outcome{
		ID: rec.ID, Function: rec.Function, Condition: d.Condition, Status: rec.Status, Attempts: rec.Attempts,
		SubmittedAt: rec.SubmittedAt, FinishedAt: rec.FinishedAt, Request: inv.Request, Error: rec.Error, Response: rec.Result,
	}
	if rec.Result != nil {
		out.LastStatus = rec.Result.Status
	}
	data, err := json.Marshal(out)
	if err != nil {
		return "", err
	}
	attrs := map[string]string{
		AttrInvocation: rec.ID, AttrFunction: rec.Function, AttrCondition: d.Condition, duct.AttrHops: strconv.Itoa(inv.Hops),
	}
	for try := 1; ; try++ {
		id, err := s.topics.Publish(ctx, d.Topic, data, attrs)
		switch {
		case err == nil:
			return id, nil
		case errors.Is(err, duct.ErrNotFound):
			return "", fmt.Errorf("topic %q does not exist: create it (duct topics create %s) to receive outcomes", d.Topic, d.Topic)
		case errors.Is(err, duct.ErrInvalid), errors.Is(err, duct.ErrTooLarge), try == publishTries:
			return "", fmt.Errorf("publish to topic %q: %w", d.Topic, err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("publish to topic %q: %w", d.Topic, err)
		case <-time.After(time.Duration(try) * 200 * time.Millisecond):
		}
	}
}
