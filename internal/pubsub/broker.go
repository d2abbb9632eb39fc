package pubsub

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
)

// Names in JetStream. Part of the on-disk format: changing one loses
// topics, subscriptions or messages.
const (
	bucketTopics  = "duct-pubsub-topics"        // kvKey(name) → topicRecord
	bucketSubs    = "duct-pubsub-subscriptions" // kvKey(name) → subRecord
	streamPrefix  = "DUCT_PS_"                  // + topic incarnation (hex)
	subjectPrefix = "duct.ps."                  // + topic incarnation (hex)
	consumerPre   = "sub-"                      // + incarnation (hex) + "-" + generation
)

// Timing of delivery. JetStream's own redelivery deadline is kept past
// every lease (by jsGrace) so that, while this node lives, it decides
// when a message goes back; JetStream takes over when the node dies.
const (
	jsGrace    = 5 * time.Second  // JetStream's deadline runs this far past a lease
	jsRefresh  = 2 * time.Second  // push JetStream's deadline this long before it passes
	readyTTL   = 5 * time.Second  // a fetched message nobody takes goes back after this
	fetchWait  = 10 * time.Second // longest pull request sent to JetStream
	maxHeld    = 10_000           // messages held back by ordering keys, per subscription
	headAwayOK = 2 * time.Minute  // past backoff, how long a nacked ordering head may stay away
)

// Config configures the broker. The zero value works.
type Config struct {
	// Project names the project in push bodies and dead-letter attributes
	// (projects/PROJECT/subscriptions/NAME); empty means "duct".
	Project string
	// HTTPClient makes push deliveries; nil means a client without
	// redirects whose requests time out at the ack deadline.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Broker implements Service on JetStream. It is safe for concurrent use.
// Topic and subscription configs live in KV buckets (checked against the
// revision read); every node sharing the NATS watches them, so a change
// made on one node reaches the others' deliveries.
type Broker struct {
	cfg      Config
	nc       *nats.Conn
	js       jetstream.JetStream
	replicas int
	topicsKV jetstream.KeyValue
	subsKV   jetstream.KeyValue
	log      *slog.Logger
	now      func() time.Time
	http     *http.Client

	ctx    context.Context // ends at Close: stops background work
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines

	bgMu     sync.Mutex // guards bgClosed; a leaf: taken under any other lock
	bgClosed bool       // no more background goroutines

	mu     sync.Mutex             // guards the maps and closed
	topics map[string]topicEntry  // name → cached record
	subs   map[string]*subscriber // loaded subscriptions
	pubs   map[uint64]*publisher  // topic incarnation → publisher
	closed bool
}

var _ Service = (*Broker)(nil)

type topicRecord struct {
	Topic
	Inc uint64 `json:"inc"` // incarnation: names the stream
}

type topicEntry struct {
	rec topicRecord
	rev uint64
}

type subRecord struct {
	Subscription
	Inc      uint64    `json:"inc"`      // incarnation, fixed at creation
	TopicInc uint64    `json:"topicInc"` // the topic's incarnation: its stream
	Gen      uint64    `json:"gen"`      // consumer generation, bumped by Seek
	SeekTime time.Time `json:"seekTime,omitzero"`
}

func (r *subRecord) detached() bool { return r.Topic == DeletedTopic }

func streamName(inc uint64) string  { return fmt.Sprintf("%s%016x", streamPrefix, inc) }
func subjectName(inc uint64) string { return fmt.Sprintf("%s%016x", subjectPrefix, inc) }
func consumerName(inc, gen uint64) string {
	return fmt.Sprintf("%s%016x-%d", consumerPre, inc, gen)
}

func newInc() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) | 1 // never zero
}

// New opens the broker's buckets on b and starts watching them; push
// subscriptions start delivering at once. Close stops it.
func New(ctx context.Context, b *broker.Broker, cfg Config) (*Broker, error) {
	if cfg.Project == "" {
		cfg.Project = "duct"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	p := &Broker{cfg: cfg, nc: b.Conn, js: b.JS, replicas: max(b.Replicas, 1), log: cfg.Logger.With("component", "pubsub"),
		now: cfg.Now, http: cfg.HTTPClient,
		topics: map[string]topicEntry{}, subs: map[string]*subscriber{}, pubs: map[uint64]*publisher{}}
	var err error
	if p.topicsKV, err = p.openKV(ctx, bucketTopics, "Duct pub/sub topics"); err != nil {
		return nil, err
	}
	if p.subsKV, err = p.openKV(ctx, bucketSubs, "Duct pub/sub subscriptions"); err != nil {
		return nil, err
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	topicsW, err := p.topicsKV.WatchAll(p.ctx, jetstream.UpdatesOnly())
	if err != nil {
		p.cancel()
		return nil, fmt.Errorf("pubsub: watch topics: %w", err)
	}
	subsW, err := p.subsKV.WatchAll(p.ctx)
	if err != nil {
		_ = topicsW.Stop()
		p.cancel()
		return nil, fmt.Errorf("pubsub: watch subscriptions: %w", err)
	}
	p.wg.Add(2)
	go p.watchTopics(topicsW)
	go p.watchSubs(subsW)
	return p, nil
}

func (p *Broker) openKV(ctx context.Context, name, desc string) (jetstream.KeyValue, error) {
	kv, err := p.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: name, Description: desc, History: 1, Storage: jetstream.FileStorage, Replicas: p.replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("pubsub: bucket %s: %w", name, err)
	}
	return kv, nil
}

// Close stops deliveries. Messages this node held (leased, fetched or
// held back by ordering) go back to JetStream at once, so other nodes,
// or this one after a restart, deliver them without waiting for their
// deadlines. It does not close the NATS connection.
func (p *Broker) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	subs := make([]*subscriber, 0, len(p.subs))
	for _, s := range p.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	p.bgMu.Lock()
	p.bgClosed = true
	p.bgMu.Unlock()
	p.cancel()
	var handBack sync.WaitGroup
	for _, s := range subs {
		handBack.Go(s.shutdown)
	}
	handBack.Wait()
	p.wg.Wait()
	_ = p.nc.FlushTimeout(5 * time.Second)
}

// spawn runs f in a background goroutine that Close waits for; after
// Close it refuses.
func (p *Broker) spawn(f func()) bool {
	p.bgMu.Lock()
	defer p.bgMu.Unlock()
	if p.bgClosed {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}

// watchTopics drops cached topics that changed elsewhere.
func (p *Broker) watchTopics(w jetstream.KeyWatcher) {
	defer p.wg.Done()
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-p.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue
			}
			name, ok := nameFromKey(e.Key())
			if !ok {
				continue
			}
			p.mu.Lock()
			if c, ok := p.topics[name]; ok && c.rev < e.Revision() {
				delete(p.topics, name)
			}
			p.mu.Unlock()
		}
	}
}

// watchSubs brings loaded subscriptions up to date and starts push
// subscriptions, on every node.
func (p *Broker) watchSubs(w jetstream.KeyWatcher) {
	defer p.wg.Done()
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-p.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue
			}
			name, ok := nameFromKey(e.Key())
			if !ok {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				p.dropSub(name, e.Revision())
				continue
			}
			var rec subRecord
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				p.log.Warn("pubsub: undecodable subscription record", "key", e.Key(), "err", err)
				continue
			}
			p.applySub(rec, e.Revision())
		}
	}
}

// applySub updates a loaded subscription, or loads it if it pushes.
func (p *Broker) applySub(rec subRecord, rev uint64) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	s := p.subs[rec.Name]
	if s == nil && rec.Push != nil && !rec.detached() {
		s = newSubscriber(p, rec, rev)
		p.subs[rec.Name] = s
		p.mu.Unlock()
		s.start()
		return
	}
	p.mu.Unlock()
	if s != nil {
		s.update(rec, rev)
	}
}

// dropSub forgets a deleted subscription: its streams and pulls end.
func (p *Broker) dropSub(name string, rev uint64) {
	p.mu.Lock()
	s := p.subs[name]
	if s != nil && s.revision() < rev {
		delete(p.subs, name)
	} else {
		s = nil
	}
	p.mu.Unlock()
	if s != nil {
		s.remove()
	}
}

func nameFromKey(key string) (string, bool) {
	if !strings.Contains(key, "=") {
		return key, true
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		if key[i] != '=' {
			b.WriteByte(key[i])
			continue
		}
		if i+2 >= len(key) {
			return "", false
		}
		var c byte
		if _, err := fmt.Sscanf(key[i+1:i+3], "%02X", &c); err != nil {
			return "", false
		}
		b.WriteByte(c)
		i += 2
	}
	return b.String(), true
}

// getJSON reads a record; a missing key is duct.ErrNotFound.
func getJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string) (T, uint64, error) {
	var v T
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return v, 0, duct.ErrNotFound
	}
	if err != nil {
		return v, 0, err
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return v, 0, fmt.Errorf("decode %s/%s: %w", kv.Bucket(), key, err)
	}
	return v, e.Revision(), nil
}

// putJSON writes v at key if the key is still at rev (0: must not exist);
// otherwise duct.ErrConflict.
func putJSON(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64, v any) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		rev, err = kv.Create(ctx, key, b)
	} else {
		rev, err = kv.Update(ctx, key, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, duct.ErrConflict
	}
	return rev, err
}

// listJSON reads every record of a bucket.
func listJSON[T any](ctx context.Context, kv jetstream.KeyValue) ([]T, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	var out []T
	for _, k := range keys {
		v, _, err := getJSON[T](ctx, kv, k)
		if errors.Is(err, duct.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, ctx.Err()
}
