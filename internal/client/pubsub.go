package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/api"
)

// Topics lists the topics, sorted by name (read).
func (c *Client) Topics(ctx context.Context) ([]api.Topic, error) {
	var out []api.Topic
	if err := c.call(ctx, http.MethodGet, "topics", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Topic describes one topic, with its subscriptions (read).
func (c *Client) Topic(ctx context.Context, name string) (*api.Topic, error) {
	var t api.Topic
	if err := c.call(ctx, http.MethodGet, "topics/"+url.PathEscape(name), nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateTopic creates a topic with the settings of t (deploy); a topic of
// that name already there is duct.ErrConflict.
func (c *Client) CreateTopic(ctx context.Context, name string, t api.Topic) (*api.Topic, error) {
	var out api.Topic
	if err := c.call(ctx, http.MethodPut, "topics/"+url.PathEscape(name), t, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteTopic deletes a topic (deploy). Its subscriptions remain and
// receive nothing more.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "topics/"+url.PathEscape(name), nil, nil)
}

// Publish stores messages on a topic and returns their ids, in order
// (invoke). Up to 1,000 messages and 10 MB go in one call.
func (c *Client) Publish(ctx context.Context, topic string, msgs ...api.Message) ([]string, error) {
	var out api.PublishResponse
	if err := c.call(ctx, http.MethodPost, "topics/"+url.PathEscape(topic)+"/publish", api.PublishRequest{Messages: msgs}, &out); err != nil {
		return nil, err
	}
	return out.MessageIDs, nil
}

// Subscriptions lists the subscriptions, all of them or those of topic
// when it is not empty (read).
func (c *Client) Subscriptions(ctx context.Context, topic string) ([]api.Subscription, error) {
	var q url.Values
	if topic != "" {
		q = url.Values{"topic": {topic}}
	}
	req, err := c.newRequest(ctx, http.MethodGet, "subscriptions", q, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []api.Subscription
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET %s: reading the answer: %w", req.URL.Path, c.readFailure(ctx, err))
	}
	return out, nil
}

// Subscription describes one subscription (read).
func (c *Client) Subscription(ctx context.Context, name string) (*api.Subscription, error) {
	var s api.Subscription
	if err := c.call(ctx, http.MethodGet, "subscriptions/"+url.PathEscape(name), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// CreateSubscription creates a subscription to s.Topic (deploy).
func (c *Client) CreateSubscription(ctx context.Context, name string, s api.Subscription) (*api.Subscription, error) {
	var out api.Subscription
	if err := c.call(ctx, http.MethodPut, "subscriptions/"+url.PathEscape(name), s, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteSubscription deletes a subscription and its backlog (deploy).
func (c *Client) DeleteSubscription(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "subscriptions/"+url.PathEscape(name), nil, nil)
}

// Pull returns up to max messages of a subscription (invoke). With wait
// above zero it waits that long for a first message when none is ready;
// none arriving is an empty list, not an error.
func (c *Client) Pull(ctx context.Context, sub string, max int, wait time.Duration) ([]api.ReceivedMessage, error) {
	var out api.PullResponse
	in := api.PullRequest{MaxMessages: max, Wait: duct.Duration(wait)}
	if err := c.call(ctx, http.MethodPost, "subscriptions/"+url.PathEscape(sub)+"/pull", in, &out); err != nil {
		return nil, err
	}
	return out.ReceivedMessages, nil
}

// Acknowledge acknowledges pulled messages by their ack ids (invoke).
func (c *Client) Acknowledge(ctx context.Context, sub string, ackIDs ...string) error {
	return c.call(ctx, http.MethodPost, "subscriptions/"+url.PathEscape(sub)+"/acknowledge", api.AckRequest{AckIDs: ackIDs}, nil)
}

// ModifyAckDeadline extends or ends the leases of pulled messages
// (invoke): they are delivered again d from now; 0 makes them available
// at once.
func (c *Client) ModifyAckDeadline(ctx context.Context, sub string, d time.Duration, ackIDs ...string) error {
	secs := int(d / time.Second)
	in := api.ModifyAckDeadlineRequest{AckIDs: ackIDs, AckDeadlineSeconds: &secs}
	return c.call(ctx, http.MethodPost, "subscriptions/"+url.PathEscape(sub)+"/modify-ack-deadline", in, nil)
}

// Seek makes a subscription's messages published at or after t
// unacknowledged, and those before t acknowledged (invoke).
func (c *Client) Seek(ctx context.Context, sub string, t time.Time) error {
	return c.call(ctx, http.MethodPost, "subscriptions/"+url.PathEscape(sub)+"/seek", api.SeekRequest{Time: t}, nil)
}
