// Package pubsub is Duct's message broker with Google Cloud Pub/Sub's
// semantics, stored on JetStream: topics, subscriptions, at-least-once
// delivery with ack deadlines, retry backoff, dead-letter topics, ordering
// keys, attribute filters, retention and seek, pull, streaming pull and
// push delivery. Front ends (the gRPC google.pubsub.v1 server, the REST API
// and CLI, function triggers) all use the Service interface.
package pubsub

import (
	"context"
	"errors"
	"time"
)

// Limits from Google's documentation.
const (
	MaxMessageSize      = 10 << 20 // data + attributes + ordering key of one message
	MaxPublishBatch     = 1000     // messages per Publish request
	MaxPublishBytes     = 10 << 20 // bytes per Publish request
	MaxAttributes       = 100
	MaxAttributeKey     = 256
	MaxAttributeValue   = 1024
	MaxOrderingKey      = 1024
	MinAckDeadline      = 10 * time.Second
	MaxAckDeadline      = 600 * time.Second
	DefaultAckDeadline  = 10 * time.Second
	MinDeadLetterTries  = 5
	MaxDeadLetterTries  = 100
	DefaultDeadLetter   = 5
	DefaultMinBackoff   = 10 * time.Second
	DefaultMaxBackoff   = 600 * time.Second
	MaxRetryBackoff     = 600 * time.Second
	DefaultRetention    = 7 * 24 * time.Hour
	MinRetention        = 10 * time.Minute
	MaxRetention        = 31 * 24 * time.Hour
	MaxPullMessages     = 1000
	MaxFilterLength     = 256
	DeadLetterSourceKey = "CloudPubSubDeadLetterSourceSubscription"

	// MaxSubscriptionRetention bounds Subscription.Retention (Google's
	// limit); MinRetention is its lower bound too.
	MaxSubscriptionRetention = 7 * 24 * time.Hour
	// MinNameLength and MaxNameLength bound topic and subscription names.
	MinNameLength = 3
	MaxNameLength = 255
)

// Attributes a dead-lettered message carries besides its own, as Google
// sets them.
const (
	// DeadLetterSourceKey (above) names the subscription the message was
	// dead-lettered from, as projects/PROJECT/subscriptions/NAME.
	DeadLetterCountKey   = "CloudPubSubDeadLetterSourceDeliveryCount"
	DeadLetterProjectKey = "CloudPubSubDeadLetterSourceSubscriptionProject"
	DeadLetterTimeKey    = "CloudPubSubDeadLetterSourceTopicPublishTime"
)

// DeletedTopic is the Topic of a subscription whose topic was deleted
// (Google's name for it); such a subscription delivers nothing more.
// GetTopic(DeletedTopic) is duct.ErrNotFound.
const DeletedTopic = "_deleted-topic_"

// Message is one message as published or delivered.
type Message struct {
	// ID is assigned by the server at publish: unique within the topic.
	ID          string            `json:"messageId,omitempty"`
	Data        []byte            `json:"data,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	OrderingKey string            `json:"orderingKey,omitempty"`
	PublishTime time.Time         `json:"publishTime,omitempty"`
}

// Topic is a named stream of messages.
type Topic struct {
	// Name is the short name ("uploads"); gRPC's projects/P/topics/NAME
	// maps to it whatever P is.
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// Retention is how long published messages are kept for seek and for
	// subscriptions created later with a start time; 0 means
	// DefaultRetention.
	Retention time.Duration `json:"retention,omitempty"`
	CreatedAt time.Time     `json:"createdAt"`
}

// RetryPolicy spaces redeliveries of nacked or expired messages: the
// delay doubles from Min up to Max.
type RetryPolicy struct {
	MinBackoff time.Duration `json:"minBackoff"`
	MaxBackoff time.Duration `json:"maxBackoff"`
}

// DeadLetterPolicy moves a message that has been delivered MaxAttempts
// times without an ack to Topic.
type DeadLetterPolicy struct {
	Topic       string `json:"topic"`
	MaxAttempts int    `json:"maxAttempts"`
}

// PushConfig makes the server POST each message to Endpoint (Google's push
// JSON body) and treat a 2xx answer as an ack.
type PushConfig struct {
	Endpoint   string            `json:"endpoint"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Subscription is a durable cursor on a topic.
type Subscription struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
	// AckDeadline is how long a delivered message stays leased before it is
	// redelivered; 0 means DefaultAckDeadline.
	AckDeadline time.Duration     `json:"ackDeadline,omitempty"`
	Retry       *RetryPolicy      `json:"retryPolicy,omitempty"`
	DeadLetter  *DeadLetterPolicy `json:"deadLetterPolicy,omitempty"`
	// Filter is Google's filter syntax on attributes; messages that do not
	// match are acknowledged without delivery.
	Filter   string      `json:"filter,omitempty"`
	Ordering bool        `json:"enableMessageOrdering,omitempty"`
	Push     *PushConfig `json:"pushConfig,omitempty"`
	// Retention bounds how far back Seek can go and how long unacked
	// messages are kept; 0 means the topic's retention.
	Retention time.Duration     `json:"messageRetentionDuration,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
}

// Received is a delivered message and what it takes to settle it.
type Received struct {
	AckID   string
	Message Message
	// DeliveryAttempt counts deliveries, from 1; set only when the
	// subscription has a dead-letter policy (as Google does).
	DeliveryAttempt int
}

// StreamOptions are a streaming pull's flow control.
type StreamOptions struct {
	// AckDeadline for messages of this stream; 0 means the subscription's.
	AckDeadline time.Duration
	// MaxOutstandingMessages and MaxOutstandingBytes bound what the
	// client holds unacked; 0 means unbounded (1000 messages).
	MaxOutstandingMessages int
	MaxOutstandingBytes    int64
}

// Stream is one streaming pull: messages flow out of Receive; acks and
// deadline changes flow in through the Service by ack id.
type Stream interface {
	// Receive blocks until messages are available (returning at most what
	// flow control allows), ctx ends (ctx's error), or the stream is
	// closed (ErrStreamClosed). Once the subscription is deleted it
	// returns an error wrapping duct.ErrNotFound.
	Receive(ctx context.Context) ([]Received, error)
	// Close ends the stream; messages it held unacked are redelivered.
	Close() error
}

// ErrStreamClosed is what Stream.Receive returns once the stream is
// closed.
var ErrStreamClosed = errors.New("pubsub: stream closed")

// Service is the broker. Errors wrap duct.ErrNotFound (unknown topic or
// subscription; a name that breaks the naming rules names nothing, so
// reading, publishing to or pulling from it is not found too, while
// creating it is invalid), duct.ErrConflict (already exists),
// duct.ErrInvalid (bad names, policies, filters, malformed ack ids) and
// duct.ErrTooLarge (messages or requests over the limits).
type Service interface {
	CreateTopic(ctx context.Context, t Topic) (Topic, error)
	GetTopic(ctx context.Context, name string) (Topic, error)
	// UpdateTopic sets t.Name's labels and retention to t's.
	UpdateTopic(ctx context.Context, t Topic) (Topic, error)
	ListTopics(ctx context.Context) ([]Topic, error)
	// DeleteTopic removes a topic; its subscriptions remain, detached
	// (Google's semantics: they deliver nothing more).
	DeleteTopic(ctx context.Context, name string) error
	// Publish stores msgs durably (fsynced, as one atomic batch when the
	// store allows) and returns their ids in order.
	Publish(ctx context.Context, topic string, msgs []Message) ([]string, error)

	CreateSubscription(ctx context.Context, s Subscription) (Subscription, error)
	GetSubscription(ctx context.Context, name string) (Subscription, error)
	// UpdateSubscription sets s.Name's ack deadline, retry and dead-letter
	// policies, push config, retention and labels to s's (zero values
	// mean the defaults, as at creation). The topic (s.Topic may be
	// empty), the filter and ordering cannot change: duct.ErrInvalid.
	UpdateSubscription(ctx context.Context, s Subscription) (Subscription, error)
	ListSubscriptions(ctx context.Context) ([]Subscription, error)
	ListTopicSubscriptions(ctx context.Context, topic string) ([]string, error)
	DeleteSubscription(ctx context.Context, name string) error

	// Pull returns up to max messages; with wait it blocks until at least
	// one is available or ctx ends (returning ctx's error).
	Pull(ctx context.Context, sub string, max int, wait bool) ([]Received, error)
	// StreamingPull opens a stream on a subscription.
	StreamingPull(ctx context.Context, sub string, opts StreamOptions) (Stream, error)
	// Acknowledge settles messages by ack id, whichever node delivered
	// them. Ack ids from before a Seek or of another subscription are
	// ignored; a malformed one is reported (duct.ErrInvalid) after the
	// others are applied. The same holds for ModifyAckDeadline.
	Acknowledge(ctx context.Context, sub string, ackIDs []string) error
	// ModifyAckDeadline sets the remaining lease of the messages to d from
	// now; 0 makes them available again at once (a nack, subject to the
	// retry policy's backoff).
	ModifyAckDeadline(ctx context.Context, sub string, ackIDs []string, d time.Duration) error
	// Seek marks every message published before t acknowledged and every
	// one published at or after it (and still retained) unacknowledged.
	Seek(ctx context.Context, sub string, t time.Time) error
}
