package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/pubsub"
)

// Subscription is a subscription as the API shows it, and the body that
// creates one. Field names follow Google's REST API; durations are Go
// durations ("10s", "1h30m"; "600s" reads too).
type Subscription struct {
	Name  string `json:"name,omitempty"`
	Topic string `json:"topic"`
	// AckDeadlineSeconds is how long a delivered message stays leased
	// before it is delivered again: 10 to 600; 0 means 10.
	AckDeadlineSeconds int               `json:"ackDeadlineSeconds,omitempty"`
	RetryPolicy        *RetryPolicy      `json:"retryPolicy,omitempty"`
	DeadLetterPolicy   *DeadLetterPolicy `json:"deadLetterPolicy,omitempty"`
	// Filter selects messages by attributes, in Google's filter syntax;
	// the others are acknowledged without delivery.
	Filter                string      `json:"filter,omitempty"`
	EnableMessageOrdering bool        `json:"enableMessageOrdering,omitempty"`
	PushConfig            *PushConfig `json:"pushConfig,omitempty"`
	// MessageRetentionDuration bounds how far back seek can go; zero means
	// the topic's retention.
	MessageRetentionDuration duct.Duration     `json:"messageRetentionDuration,omitzero"`
	Labels                   map[string]string `json:"labels,omitempty"`
	CreatedAt                time.Time         `json:"createdAt,omitzero"`
}

// RetryPolicy spaces redeliveries: the delay doubles from the minimum up
// to the maximum.
type RetryPolicy struct {
	MinimumBackoff duct.Duration `json:"minimumBackoff,omitzero"`
	MaximumBackoff duct.Duration `json:"maximumBackoff,omitzero"`
}

// DeadLetterPolicy moves a message to DeadLetterTopic after
// MaxDeliveryAttempts deliveries (5 to 100; 0 means 5).
type DeadLetterPolicy struct {
	DeadLetterTopic     string `json:"deadLetterTopic"`
	MaxDeliveryAttempts int    `json:"maxDeliveryAttempts,omitempty"`
}

// PushConfig makes the server POST each message to PushEndpoint.
type PushConfig struct {
	PushEndpoint string            `json:"pushEndpoint"`
	Attributes   map[string]string `json:"attributes,omitempty"`
}

func subOut(s pubsub.Subscription) Subscription {
	out := Subscription{
		Name: s.Name, Topic: s.Topic, AckDeadlineSeconds: int(s.AckDeadline / time.Second), Filter: s.Filter,
		EnableMessageOrdering: s.Ordering, MessageRetentionDuration: duct.Duration(s.Retention), Labels: s.Labels,
		CreatedAt: s.CreatedAt,
	}
	if out.AckDeadlineSeconds == 0 {
		out.AckDeadlineSeconds = int(pubsub.DefaultAckDeadline / time.Second)
	}
	if r := s.Retry; r != nil {
		out.RetryPolicy = &RetryPolicy{MinimumBackoff: duct.Duration(r.MinBackoff), MaximumBackoff: duct.Duration(r.MaxBackoff)}
	}
	if d := s.DeadLetter; d != nil {
		out.DeadLetterPolicy = &DeadLetterPolicy{DeadLetterTopic: d.Topic, MaxDeliveryAttempts: d.MaxAttempts}
	}
	if p := s.Push; p != nil {
		out.PushConfig = &PushConfig{PushEndpoint: p.Endpoint, Attributes: p.Attributes}
	}
	return out
}

// subIn reads a subscription's settings; what is left out gets Google's
// defaults.
func subIn(name string, in Subscription) pubsub.Subscription {
	s := pubsub.Subscription{
		Name: name, Topic: in.Topic, AckDeadline: time.Duration(in.AckDeadlineSeconds) * time.Second, Filter: in.Filter,
		Ordering: in.EnableMessageOrdering, Retention: in.MessageRetentionDuration.D(), Labels: in.Labels,
	}
	if r := in.RetryPolicy; r != nil {
		s.Retry = &pubsub.RetryPolicy{MinBackoff: pubsub.DefaultMinBackoff, MaxBackoff: pubsub.DefaultMaxBackoff}
		if r.MinimumBackoff != 0 {
			s.Retry.MinBackoff = r.MinimumBackoff.D()
		}
		if r.MaximumBackoff != 0 {
			s.Retry.MaxBackoff = r.MaximumBackoff.D()
		}
	}
	if d := in.DeadLetterPolicy; d != nil && d.DeadLetterTopic != "" {
		s.DeadLetter = &pubsub.DeadLetterPolicy{Topic: d.DeadLetterTopic, MaxAttempts: d.MaxDeliveryAttempts}
		if s.DeadLetter.MaxAttempts == 0 {
			s.DeadLetter.MaxAttempts = pubsub.DefaultDeadLetter
		}
	}
	if p := in.PushConfig; p != nil && p.PushEndpoint != "" {
		s.Push = &pubsub.PushConfig{Endpoint: p.PushEndpoint, Attributes: p.Attributes}
	}
	return s
}

// listSubscriptions lists every subscription, or with ?topic= those of
// one topic.
func (a *API) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	subs, err := ps.ListSubscriptions(r.Context())
	if err != nil {
		return err
	}
	topic := r.URL.Query().Get("topic")
	out := make([]Subscription, 0, len(subs))
	for _, s := range subs {
		if topic == "" || s.Topic == topic {
			out = append(out, subOut(s))
		}
	}
	slices.SortFunc(out, func(a, b Subscription) int { return strings.Compare(a.Name, b.Name) })
	return writeJSON(w, http.StatusOK, out)
}

// createSubscription creates the subscription {name}: 201, 409 when it
// exists, 404 when its topic does not.
func (a *API) createSubscription(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	var in Subscription
	if err := readJSON(r, &in); err != nil {
		return err
	}
	switch {
	case in.Name != "" && in.Name != name:
		return duct.Invalid("name", "the body names subscription %q, the path %q", in.Name, name)
	case in.Topic == "":
		return duct.Invalid("topic", `missing: want {"topic": "NAME"}`)
	}
	s, err := ps.CreateSubscription(r.Context(), subIn(name, in))
	if errors.Is(err, duct.ErrConflict) {
		return fmt.Errorf("subscription %q already exists: %w", name, duct.ErrConflict)
	}
	if err != nil {
		return err
	}
	a.log.Info("subscription created", "subscription", name, "topic", s.Topic, "by", principal(r).Name)
	return writeJSON(w, http.StatusCreated, subOut(s))
}

func (a *API) getSubscription(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	s, err := ps.GetSubscription(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, subOut(s))
}

func (a *API) deleteSubscription(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := ps.DeleteSubscription(r.Context(), name); err != nil {
		return err
	}
	a.log.Info("subscription deleted", "subscription", name, "by", principal(r).Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// PullRequest is the body of POST /api/v1/subscriptions/{name}/pull.
type PullRequest struct {
	// MaxMessages is how many messages to return at most: 1 to 1000.
	MaxMessages int `json:"maxMessages"`
	// Wait is how long to wait for a first message when none is ready:
	// up to MaxPullWait; zero answers at once.
	Wait duct.Duration `json:"wait,omitzero"`
}

// MaxPullWait bounds PullRequest.Wait.
const MaxPullWait = 5 * time.Minute

// ReceivedMessage is a delivered message and the id that acknowledges it.
type ReceivedMessage struct {
	AckID   string  `json:"ackId"`
	Message Message `json:"message"`
	// DeliveryAttempt counts deliveries from 1, on subscriptions with a
	// dead-letter policy.
	DeliveryAttempt int `json:"deliveryAttempt,omitempty"`
}

// PullResponse holds the messages pulled, none when none was ready.
type PullResponse struct {
	ReceivedMessages []ReceivedMessage `json:"receivedMessages"`
}

func (a *API) pull(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	var in PullRequest
	if err := readJSON(r, &in); err != nil {
		return err
	}
	switch {
	case in.MaxMessages < 1 || in.MaxMessages > pubsub.MaxPullMessages:
		return duct.Invalid("maxMessages", "%d: want 1 to %d", in.MaxMessages, pubsub.MaxPullMessages)
	case in.Wait < 0 || in.Wait.D() > MaxPullWait:
		return duct.Invalid("wait", "%s: want 0 to %s", in.Wait, MaxPullWait)
	}
	ctx, cancel := a.untilStopping(r.Context())
	defer cancel()
	wait := in.Wait > 0
	if wait {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, in.Wait.D(), errWaited)
		defer stop()
	}
	got, err := ps.Pull(ctx, r.PathValue("name"), in.MaxMessages, wait)
	switch {
	case err == nil, wait && errors.Is(context.Cause(ctx), errWaited):
	case errors.Is(context.Cause(ctx), duct.ErrShuttingDown):
		return fmt.Errorf("pull: %w", duct.ErrShuttingDown)
	case r.Context().Err() != nil:
		return nil // the caller went away
	default:
		return err
	}
	out := PullResponse{ReceivedMessages: make([]ReceivedMessage, len(got))}
	for i, g := range got {
		m := g.Message
		out.ReceivedMessages[i] = ReceivedMessage{
			AckID:           g.AckID,
			Message:         Message{Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey, MessageID: m.ID, PublishTime: m.PublishTime},
			DeliveryAttempt: g.DeliveryAttempt,
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

var errWaited = errors.New("no message within the pull's wait")

// untilStopping returns ctx, cancelled also, with duct.ErrShuttingDown
// as its cause, when the server begins to shut down.
func (a *API) untilStopping(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	if a.cfg.Stopping != nil {
		go func() {
			select {
			case <-a.cfg.Stopping:
				cancel(duct.ErrShuttingDown)
			case <-ctx.Done():
			}
		}()
	}
	return ctx, func() { cancel(nil) }
}

// AckRequest is the body of POST /api/v1/subscriptions/{name}/acknowledge.
type AckRequest struct {
	AckIDs []string `json:"ackIds"`
}

func (a *API) acknowledge(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	var in AckRequest
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if len(in.AckIDs) == 0 {
		return duct.Invalid("ackIds", `none given: want {"ackIds": ["…"]}`)
	}
	if err := ps.Acknowledge(r.Context(), r.PathValue("name"), in.AckIDs); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ModifyAckDeadlineRequest is the body of POST
// /api/v1/subscriptions/{name}/modify-ack-deadline: the messages' leases
// end AckDeadlineSeconds (0 to 600) from now; 0 makes them available
// again at once (a nack).
type ModifyAckDeadlineRequest struct {
	AckIDs             []string `json:"ackIds"`
	AckDeadlineSeconds *int     `json:"ackDeadlineSeconds"`
}

func (a *API) modifyAckDeadline(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	var in ModifyAckDeadlineRequest
	if err := readJSON(r, &in); err != nil {
		return err
	}
	maxSecs := int(pubsub.MaxAckDeadline / time.Second)
	switch {
	case len(in.AckIDs) == 0:
		return duct.Invalid("ackIds", `none given: want {"ackIds": ["…"], "ackDeadlineSeconds": N}`)
	case in.AckDeadlineSeconds == nil:
		return duct.Invalid("ackDeadlineSeconds", "missing: want 0 (available again at once) to %d", maxSecs)
	case *in.AckDeadlineSeconds < 0 || *in.AckDeadlineSeconds > maxSecs:
		return duct.Invalid("ackDeadlineSeconds", "%d: want 0 to %d", *in.AckDeadlineSeconds, maxSecs)
	}
	d := time.Duration(*in.AckDeadlineSeconds) * time.Second
	if err := ps.ModifyAckDeadline(r.Context(), r.PathValue("name"), in.AckIDs, d); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// SeekRequest is the body of POST /api/v1/subscriptions/{name}/seek.
type SeekRequest struct {
	// Time: messages published before it count as acknowledged, those
	// published at or after it (and still retained) as not.
	Time time.Time `json:"time"`
}

func (a *API) seek(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	var in SeekRequest
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Time.IsZero() {
		return duct.Invalid("time", `missing: want {"time": "RFC 3339 time"}`)
	}
	name := r.PathValue("name")
	if err := ps.Seek(r.Context(), name, in.Time); err != nil {
		return err
	}
	a.log.Info("subscription seeked", "subscription", name, "time", in.Time, "by", principal(r).Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
