// Package async runs asynchronous invocations: a durable queue of them on
// JetStream (a work-queue stream shared by every node, so that an
// invocation goes to one node and comes back to another if that node
// dies), the dispatcher that runs them through the data plane with
// retries, their records, idempotency keys, and the topics their outcomes
// are sent to.
package async

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
)

// Names on JetStream. They are part of the on-disk format: changing one
// loses data.
const (
	streamName    = "DUCT_ASYNC"             // work queue: one message per invocation
	subjectPrefix = "duct.async."            // + function name; its consumer is "dispatch-" + function name
	bucketRecords = "duct-invocations"       // id → duct.Invocation
	bucketKeys    = "duct-async-idempotency" // function.sha256(key) → id
)

// Runner runs attempts: the gateway.
type Runner interface {
	// Attempt runs one attempt and writes its answer to w; it returns the
	// attempt's report, duct.ErrNotFound when there is no such function,
	// or ctx's error when ctx ended before an instance was free.
	Attempt(ctx context.Context, w http.ResponseWriter, inv *duct.QueuedInvocation) (*duct.Report, error)
	// Version is the version serving a function, or nil.
	Version(name string) *duct.Version
}

// Publisher sends outcomes to destination topics: the Pub/Sub broker.
// Publish stores one message durably and returns its id; its errors match
// duct.ErrNotFound for a topic that does not exist, duct.ErrInvalid and
// duct.ErrTooLarge for what it refuses.
type Publisher interface {
	Publish(ctx context.Context, topic string, data []byte, attributes map[string]string) (id string, err error)
}

// Tuning holds the knobs of asynchronous invocation that operators rarely
// touch and tests shorten. Zero values get the defaults documented.
type Tuning struct {
	// RetryDelay is the wait before the first retry; each further retry
	// waits twice the one before. Default 1m (so 1m, then 2m).
	RetryDelay time.Duration
	// ThrottleDelay is the wait after an attempt found no free instance
	// (429 or 503; not counted as an attempt); it doubles with each
	// one up to MaxThrottleDelay. Defaults 1s and 1m.
	ThrottleDelay, MaxThrottleDelay time.Duration
	// MinEventAge is the least maxEventAge a retry policy may ask for;
	// smaller values are raised to it. Default 60s (duct.MinMaxEventAge).
	MinEventAge time.Duration
	// AckWait is how long a node may hold an invocation without a sign of
	// life before the queue gives it to another node: the delay before an
	// invocation interrupted by a crash runs again. Default 10s.
	AckWait time.Duration
	// Workers bounds the attempts one node runs at once. Default 64.
	Workers int
	// IdempotencyWindow is how long an Idempotency-Key is remembered.
	// Default 24h, at most RecordTTL.
	IdempotencyWindow time.Duration
	// RecordTTL is how long an invocation record is kept after its last
	// change. Default 7 days.
	RecordTTL time.Duration
	// MaxResult bounds the answer body kept in a record. Default 256 KiB.
	MaxResult int
	// StopGrace is how long Close lets running attempts finish before it
	// cancels them. Default 5s.
	StopGrace time.Duration
}

func (t *Tuning) applyDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.RetryDelay, time.Minute)
	def(&t.ThrottleDelay, time.Second)
	def(&t.MaxThrottleDelay, time.Minute)
	def(&t.MinEventAge, duct.MinMaxEventAge.D())
	def(&t.AckWait, 10*time.Second)
	def(&t.RecordTTL, 7*24*time.Hour)
	def(&t.IdempotencyWindow, 24*time.Hour)
	def(&t.StopGrace, 5*time.Second)
	t.IdempotencyWindow = min(t.IdempotencyWindow, t.RecordTTL)
	if t.Workers <= 0 {
		t.Workers = 64
	}
	if t.MaxResult <= 0 {
		t.MaxResult = 256 << 10
	}
}

// Config configures the service.
type Config struct {
	Broker *broker.Broker
	// Logs receives a platform line for each retry and each outcome,
	// under the invocation's id; nil drops them.
	Logs duct.LogSink
	Tuning
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service is the queue, its records and (once started) the dispatcher.
type Service struct {
	cfg      Config
	log      *slog.Logger
	js       jetstream.JetStream
	stream   jetstream.Stream
	replicas int
	records  jetstream.KeyValue
	keys     jetstream.KeyValue
	now      func() time.Time

	// Set by Start.
	runner  Runner
	topics  Publisher          // nil: no Pub/Sub broker
	slots   chan struct{}      // a token per attempt running on this node
	cancel  context.CancelFunc // stops fetching
	halt    context.CancelFunc // cancels running attempts
	done    chan struct{}      // closed when the dispatcher has stopped
	wg      sync.WaitGroup     // attempts being handled
	lanesWG sync.WaitGroup     // lanes pulling

	mu       sync.Mutex       // guards the fields below
	fetchCtx context.Context  // nil until Start
	runCtx   context.Context  // the attempts'
	lanes    map[string]*lane // function → its lane on this node
}

// Open creates or binds the queue stream, its consumer and the record
// buckets. The service accepts invocations at once; Start runs them.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	cfg.Tuning.applyDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := cfg.Broker
	s := &Service{cfg: cfg, log: cfg.Logger, js: b.JS, replicas: b.Replicas, now: cfg.Now, lanes: map[string]*lane{}}
	var err error
	s.stream, err = b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        streamName,
		Description: "Duct asynchronous invocations waiting to run",
		Subjects:    []string{subjectPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    b.Replicas,
		MaxMsgSize:  int32(duct.MaxAsyncBody + 256<<10), // body, headers and metadata
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("async: stream: %w", err)
	}
	kv := func(name, desc string, ttl time.Duration) (jetstream.KeyValue, error) {
		kv, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: name, Description: desc, History: 1, TTL: ttl,
			Storage: jetstream.FileStorage, Replicas: b.Replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("async: bucket %s: %w", name, err)
		}
		return kv, nil
	}
	if s.records, err = kv(bucketRecords, "Duct asynchronous invocation records", cfg.RecordTTL); err != nil {
		return nil, err
	}
	if s.keys, err = kv(bucketKeys, "Duct idempotency keys of asynchronous invocations", cfg.IdempotencyWindow); err != nil {
		return nil, err
	}
	return s, nil
}

// Start runs queued invocations on r until Close, sending outcomes to
// the topics functions name (retry onSuccess, onFailure) through topics;
// with topics nil, every such delivery is recorded as failed.
func (s *Service) Start(r Runner, topics Publisher) {
	s.runner, s.topics = r, topics
	s.slots = make(chan struct{}, s.cfg.Workers)
	fetchCtx, cancel := context.WithCancel(context.Background())
	runCtx, halt := context.WithCancel(context.Background())
	s.cancel, s.halt, s.done = cancel, halt, make(chan struct{})
	s.mu.Lock()
	s.fetchCtx, s.runCtx = fetchCtx, runCtx
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		s.dispatch(fetchCtx, runCtx)
	}()
}

// Close stops taking invocations, lets running attempts finish for the
// grace period, then cancels them: they go back to the queue.
func (s *Service) Close() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(s.cfg.StopGrace):
		s.halt()
		<-finished
	}
	s.halt()
}

// Invocation reads the record of invocation id.
func (s *Service) Invocation(ctx context.Context, id string) (duct.Invocation, error) {
	if !validID(id) {
		return duct.Invocation{}, duct.Invalid("id", "%q is not an invocation id", id)
	}
	rec, _, err := s.load(ctx, id)
	if errors.Is(err, duct.ErrNotFound) {
		return rec, fmt.Errorf("invocation %s: %w", id, err)
	}
	return rec, err
}

// validID reports whether id can name an invocation (and a KV key).
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
