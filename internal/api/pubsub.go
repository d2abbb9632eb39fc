package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/pubsub"
)

// pubsubRoutes registers the topic and subscription routes: managing them
// takes the deploy permission, publishing and consuming the invoke
// permission, reading the read permission.
func (a *API) pubsubRoutes() {
	a.route("GET /api/v1/topics", duct.PermRead, a.listTopics)
	a.route("PUT /api/v1/topics/{name}", duct.PermDeploy, a.createTopic)
	a.route("GET /api/v1/topics/{name}", duct.PermRead, a.getTopic)
	a.route("DELETE /api/v1/topics/{name}", duct.PermDeploy, a.deleteTopic)
	a.route("POST /api/v1/topics/{name}/publish", duct.PermInvoke, a.publish)
	a.route("GET /api/v1/subscriptions", duct.PermRead, a.listSubscriptions)
	a.route("PUT /api/v1/subscriptions/{name}", duct.PermDeploy, a.createSubscription)
	a.route("GET /api/v1/subscriptions/{name}", duct.PermRead, a.getSubscription)
	a.route("DELETE /api/v1/subscriptions/{name}", duct.PermDeploy, a.deleteSubscription)
	a.route("POST /api/v1/subscriptions/{name}/pull", duct.PermInvoke, a.pull)
	a.route("POST /api/v1/subscriptions/{name}/acknowledge", duct.PermInvoke, a.acknowledge)
	a.route("POST /api/v1/subscriptions/{name}/modify-ack-deadline", duct.PermInvoke, a.modifyAckDeadline)
	a.route("POST /api/v1/subscriptions/{name}/seek", duct.PermInvoke, a.seek)
}

var errNoPubSub = fmt.Errorf("pub/sub: %w", duct.ErrUnavailable)

// Topic is a topic as the API shows it, and the body that creates one.
// Field names follow Google's REST API.
type Topic struct {
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// MessageRetentionDuration is how long messages are kept for
	// subscriptions to replay (seek); zero means the server's default, 7
	// days.
	MessageRetentionDuration duct.Duration `json:"messageRetentionDuration,omitzero"`
	CreatedAt                time.Time     `json:"createdAt,omitzero"`
	// Subscriptions names the topic's subscriptions, when one topic is
	// asked for.
	Subscriptions []string `json:"subscriptions,omitempty"`
}

func topicOut(t pubsub.Topic) Topic {
	return Topic{Name: t.Name, Labels: t.Labels, MessageRetentionDuration: duct.Duration(t.Retention), CreatedAt: t.CreatedAt}
}

// pubsubService returns the broker, or the error a server without one
// answers.
func (a *API) pubsubService() (pubsub.Service, error) {
	if a.cfg.PubSub == nil {
		return nil, errNoPubSub
	}
	return a.cfg.PubSub, nil
}

func (a *API) listTopics(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	ts, err := ps.ListTopics(r.Context())
	if err != nil {
		return err
	}
	out := make([]Topic, len(ts))
	for i, t := range ts {
		out[i] = topicOut(t)
	}
	slices.SortFunc(out, func(a, b Topic) int { return strings.Compare(a.Name, b.Name) })
	return writeJSON(w, http.StatusOK, out)
}

// createTopic creates the topic {name}: 201, or 409 when it exists.
func (a *API) createTopic(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	var in Topic
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.Name != "" && in.Name != name {
		return duct.Invalid("name", "the body names topic %q, the path %q", in.Name, name)
	}
	t, err := ps.CreateTopic(r.Context(), pubsub.Topic{Name: name, Labels: in.Labels, Retention: in.MessageRetentionDuration.D()})
	if errors.Is(err, duct.ErrConflict) {
		return fmt.Errorf("topic %q already exists: %w", name, duct.ErrConflict)
	}
	if err != nil {
		return err
	}
	a.log.Info("topic created", "topic", name, "by", principal(r).Name)
	return writeJSON(w, http.StatusCreated, topicOut(t))
}

func (a *API) getTopic(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	t, err := ps.GetTopic(r.Context(), name)
	if err != nil {
		return err
	}
	subs, err := ps.ListTopicSubscriptions(r.Context(), name)
	if err != nil {
		return err
	}
	out := topicOut(t)
	out.Subscriptions = slices.Sorted(slices.Values(subs))
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteTopic(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := ps.DeleteTopic(r.Context(), name); err != nil {
		return err
	}
	a.log.Info("topic deleted", "topic", name, "by", principal(r).Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Message is a message to publish or one delivered. Data is base64 in
// JSON, as in Google's REST API.
type Message struct {
	Data        []byte            `json:"data,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	OrderingKey string            `json:"orderingKey,omitempty"`
	// MessageID and PublishTime are set by the server.
	MessageID   string    `json:"messageId,omitempty"`
	PublishTime time.Time `json:"publishTime,omitzero"`
}

// PublishRequest is the body of POST /api/v1/topics/{name}/publish.
type PublishRequest struct {
	Messages []Message `json:"messages"`
}

// PublishResponse holds the ids of the published messages, in order.
type PublishResponse struct {
	MessageIDs []string `json:"messageIds"`
}

// maxPublishBody bounds a publish request: 10 MB of messages, base64 in
// JSON.
const maxPublishBody = 16 << 20

func (a *API) publish(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.pubsubService()
	if err != nil {
		return err
	}
	var in PublishRequest
	if err := readJSONLimit(r, &in, maxPublishBody); err != nil {
		return err
	}
	if len(in.Messages) == 0 {
		return duct.Invalid("messages", "none to publish: want {\"messages\": [{\"data\": \"BASE64\", \"attributes\": {...}}]}")
	}
	msgs := make([]pubsub.Message, len(in.Messages))
	for i, m := range in.Messages {
		msgs[i] = pubsub.Message{Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey}
	}
	ids, err := ps.Publish(r.Context(), r.PathValue("name"), msgs)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, PublishResponse{MessageIDs: ids})
}

// readJSONLimit is readJSON for bodies of up to limit bytes; a larger one
// is refused as too large.
func readJSONLimit(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return fmt.Errorf("the body exceeds %d MiB: %w", limit>>20, duct.ErrTooLarge)
	case err != nil && !errors.Is(err, io.EOF):
		return duct.Invalid("body", "%v", err)
	}
	return nil
}
