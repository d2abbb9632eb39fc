package duct

import "time"

// Asynchronous invocations: limits and defaults from the brief.
const (
	// MaxAsyncBody bounds the body of an asynchronous invocation.
	MaxAsyncBody = 1 * MiB
	// DefaultRetryAttempts is how many times a failed asynchronous
	// invocation is tried again when its function's retry policy does
	// not say.
	DefaultRetryAttempts = 2
	// DefaultMaxEventAge is how long an asynchronous invocation may wait
	// for a successful attempt; MinMaxEventAge and MaxMaxEventAge bound
	// what a retry policy may ask.
	DefaultMaxEventAge = Duration(6 * time.Hour)
	MinMaxEventAge     = Duration(60 * time.Second)
	MaxMaxEventAge     = Duration(6 * time.Hour)
	// MaxHops is the longest chain of invocations one event may cause:
	// a request whose X-Duct-Hops would exceed it is refused (508 Loop
	// Detected), so a function that calls itself stops.
	MaxHops = 16
)

// The hop counter travels with every event a function causes: as this
// HTTP header on requests to instances, and as this attribute on Pub/Sub
// messages Duct publishes for an invocation. Whatever delivers an event
// to a function adds one to the count it carries (none counts as 0), and
// refuses it past MaxHops. Functions that call other functions forward
// the header as they received it.
const (
	HeaderHops = "X-Duct-Hops"
	AttrHops   = "duct-hops"
)

// OutcomeLoop is the outcome of a request refused because its chain of
// invocations (X-Duct-Hops) is longer than MaxHops.
const OutcomeLoop Outcome = "loop"

// InvocationStatus is where an asynchronous invocation stands.
type InvocationStatus string

const (
	// InvocationQueued: stored, waiting for its first attempt or for a
	// retry (NextAttemptAt says when).
	InvocationQueued InvocationStatus = "queued"
	// InvocationRunning: an attempt is under way.
	InvocationRunning InvocationStatus = "running"
	// InvocationSucceeded: an attempt got an answer below 400 (final).
	InvocationSucceeded InvocationStatus = "succeeded"
	// InvocationFailed: no attempts left, a final error (most 4xx), or
	// past its maximum event age (final).
	InvocationFailed InvocationStatus = "failed"
)

// Final reports whether s is an end state.
func (s InvocationStatus) Final() bool {
	return s == InvocationSucceeded || s == InvocationFailed
}

// InvocationRequest is an asynchronous invocation's request as stored:
// what each attempt sends the function.
type InvocationRequest struct {
	Method string `json:"method"`
	// Path is what follows /fn/{name}, escaped as the caller sent it;
	// "/" at least.
	Path  string `json:"path"`
	Query string `json:"query,omitempty"`
	Host  string `json:"host,omitempty"`
	// Header holds the caller's headers except hop-by-hop ones,
	// Authorization and X-Duct-*.
	Header map[string][]string `json:"headers,omitempty"`
	// Body is at most MaxAsyncBody bytes (base64 in JSON).
	Body []byte `json:"body,omitempty"`
}

// QueuedInvocation is one asynchronous invocation as the gateway submits
// it and the queue stores it.
type QueuedInvocation struct {
	ID       string `json:"id"`
	Function string `json:"function"`
	// Hops is the X-Duct-Hops value every attempt carries.
	Hops int `json:"hops"`
	// IdempotencyKey, when set, makes a repeated submission of the same
	// key to the same function return the first one's id.
	IdempotencyKey string            `json:"idempotencyKey,omitempty"`
	SubmittedAt    time.Time         `json:"submittedAt"`
	Request        InvocationRequest `json:"request"`
}

// Invocation is the record of an asynchronous invocation, as
// GET /api/v1/invocations/{id} answers.
type Invocation struct {
	ID       string           `json:"id"`
	Function string           `json:"function"`
	Status   InvocationStatus `json:"status"`
	// Attempts counts attempts begun. Attempts held back because the
	// function had no free instance do not count; an attempt cut short
	// by a node's death does, so a redelivered invocation shows more.
	Attempts int `json:"attempts"`
	// MaxAttempts is 1 plus the retries the function's policy allowed
	// when the invocation was last tried.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// Throttled counts the times an attempt was held back (429 or 503:
	// no instance free) and put back in the queue.
	Throttled int `json:"throttled,omitempty"`
	// Version is the function version the last attempt ran.
	Version        int    `json:"version,omitempty"`
	Hops           int    `json:"hops,omitempty"`
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	// Request names what was asked, without headers or body.
	Request       InvocationSummary `json:"request"`
	SubmittedAt   time.Time         `json:"submittedAt"`
	StartedAt     time.Time         `json:"startedAt,omitzero"`
	UpdatedAt     time.Time         `json:"updatedAt"`
	FinishedAt    time.Time         `json:"finishedAt,omitzero"`
	NextAttemptAt time.Time         `json:"nextAttemptAt,omitzero"`
	// Result is the last attempt's answer: the function's, or Duct's
	// problem document when the attempt failed in the platform.
	Result *InvocationResult `json:"result,omitempty"`
	// Error says why the last attempt failed, or why the invocation did
	// (first KiB).
	Error string `json:"error,omitempty"`
	// History lists the last attempts, oldest first.
	History []InvocationAttempt `json:"history,omitempty"`
	// Destination is where the outcome was sent (on-success or
	// on-failure topic), when the function names one.
	Destination *DestinationDelivery `json:"destination,omitempty"`
}

// InvocationSummary identifies an invocation's request.
type InvocationSummary struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query,omitempty"`
}

// InvocationResult is an answer kept in an invocation record.
type InvocationResult struct {
	Status int                 `json:"status"`
	Header map[string][]string `json:"headers,omitempty"`
	// Body is the first bytes of the answer: text as it is, anything
	// else in base64 (BodyEncoding "base64").
	Body         string `json:"body,omitempty"`
	BodyEncoding string `json:"bodyEncoding,omitempty"`
	// BodySize is the whole body's size; Truncated says Body holds less.
	BodySize  int64 `json:"bodySize"`
	Truncated bool  `json:"truncated,omitempty"`
}

// InvocationAttempt is one attempt in an invocation's history.
type InvocationAttempt struct {
	Number   int           `json:"number"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
	Version  int           `json:"version,omitempty"`
	Instance string        `json:"instance,omitempty"`
	Status   int           `json:"status,omitempty"`
	Outcome  Outcome       `json:"outcome"`
	Error    string        `json:"error,omitempty"`
}

// DestinationDelivery says what became of sending an invocation's outcome
// to a topic.
type DestinationDelivery struct {
	// Condition is "success" (onSuccess) or "failure" (onFailure).
	Condition string `json:"condition"`
	Topic     string `json:"topic"`
	// State is "pending", "published" or "failed".
	State     string `json:"state"`
	MessageID string `json:"messageId,omitempty"`
	Error     string `json:"error,omitempty"`
}
