// Package logs keeps function logs and invocation reports in a JetStream
// stream: a writer that batches entries off the hot path, and a reader
// that tails and follows them per function.
package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
)

const (
	streamName    = "DUCT_LOGS"
	subjectPrefix = "duct.logs."
)

// Config configures the log stream. Zero values get defaults.
type Config struct {
	// MaxAge is how long entries are kept; 0 means 7 days.
	MaxAge time.Duration
	// MaxBytes bounds the stream; 0 means 1 GiB. The oldest go first.
	MaxBytes int64
	// FlushInterval is how long entries may wait to be batched; 0 means
	// 100ms.
	FlushInterval time.Duration
	// Buffer is how many entries may queue before new ones are dropped;
	// 0 means 65536.
	Buffer int
	// Dropped counts entries dropped because the buffer was full.
	Dropped interface{ Inc() }
	Logger  *slog.Logger
}

// Log is the function log: write with Log, read with Read.
type Log struct {
	cfg    Config
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger

	in   chan duct.LogEntry // never closed: Log may race with Close
	stop chan struct{}
	done chan struct{}

	closeOnce sync.Once
}

// Open creates or binds the log stream and starts the writer.
func Open(ctx context.Context, b *broker.Broker, cfg Config) (*Log, error) {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 7 * 24 * time.Hour
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 100 * time.Millisecond
	}
	if cfg.Buffer == 0 {
		cfg.Buffer = 1 << 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        streamName,
		Description: "Duct function logs and invocation reports",
		Subjects:    []string{subjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		Discard:     jetstream.DiscardOld,
		Replicas:    b.Replicas,
		Compression: jetstream.S2Compression,
	})
	if err != nil {
		return nil, fmt.Errorf("logs: stream: %w", err)
	}
	l := &Log{cfg: cfg, js: b.JS, stream: s, log: cfg.Logger,
		in: make(chan duct.LogEntry, cfg.Buffer), stop: make(chan struct{}), done: make(chan struct{})}
	go l.write()
	return l, nil
}

// Log queues an entry; it never blocks, and after Close it drops.
func (l *Log) Log(e duct.LogEntry) {
	select {
	case l.in <- e:
	default:
		if l.cfg.Dropped != nil {
			l.cfg.Dropped.Inc()
		}
	}
}

// Close flushes queued entries and stops the writer.
func (l *Log) Close() {
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
	})
}

// maxBatch bounds one stored message.
const maxBatch = 512 << 10

// write batches entries per function and stores each batch as one
// message: one fsync per batch, not per line.
func (l *Log) write() {
	defer close(l.done)
	batches := map[string]*bytes.Buffer{}
	var scratch []byte
	tick := time.NewTicker(l.cfg.FlushInterval)
	defer tick.Stop()
	flush := func() {
		for fn, buf := range batches {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := l.js.Publish(ctx, subjectPrefix+fn, buf.Bytes()); err != nil {
				l.log.Warn("logs: store batch", "function", fn, "err", err)
			}
			cancel()
			delete(batches, fn)
		}
	}
	enc := func(e duct.LogEntry) {
		if e.Function == "" {
			return
		}
		buf := batches[e.Function]
		if buf == nil {
			buf = new(bytes.Buffer)
			batches[e.Function] = buf
		}
		scratch = appendEntry(scratch[:0], &e)
		buf.Write(scratch)
		if buf.Len() >= maxBatch {
			flush()
		}
	}
	for {
		select {
		case e := <-l.in:
			enc(e)
		case <-tick.C:
			flush()
		case <-l.stop:
			for {
				select {
				case e := <-l.in:
					enc(e)
				default:
					flush()
					return
				}
			}
		}
	}
}

// Query selects entries of one function.
type Query struct {
	Function string
	// Since is the oldest entry wanted; zero means an hour ago.
	Since time.Time
	// Tail keeps only the last Tail entries of what exists now; 0 means
	// all since Since.
	Tail int
	// Invocation keeps only entries of one invocation.
	Invocation string
	// Follow keeps sending new entries until ctx ends.
	Follow bool
}

// Read sends matching entries to emit, oldest first.
func (l *Log) Read(ctx context.Context, q Query, emit func(duct.LogEntry) error) error {
	since := q.Since
	if since.IsZero() {
		since = time.Now().Add(-time.Hour)
	}
	c, err := l.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjectPrefix + q.Function},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	})
	if err != nil {
		return fmt.Errorf("logs: read: %w", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return fmt.Errorf("logs: read: %w", err)
	}
	var held []duct.LogEntry // the tail, until caught up
	caughtUp := info.NumPending == 0
	send := func(e duct.LogEntry) error {
		if q.Invocation != "" && e.Invocation != q.Invocation {
			return nil
		}
		if !caughtUp && q.Tail > 0 {
			if len(held) == q.Tail {
				held = append(held[:0], held[1:]...)
			}
			held = append(held, e)
			return nil
		}
		return emit(e)
	}
	flushHeld := func() error {
		for _, e := range held {
			if err := emit(e); err != nil {
				return err
			}
		}
		held = nil
		return nil
	}
	if caughtUp && !q.Follow {
		return nil
	}
	it, err := c.Messages()
	if err != nil {
		return fmt.Errorf("logs: read: %w", err)
	}
	defer it.Stop()
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return flushHeld()
			}
			return err
		}
		for _, line := range bytes.Split(m.Data(), []byte{'\n'}) {
			if len(line) == 0 {
				continue
			}
			var e duct.LogEntry
			if json.Unmarshal(line, &e) != nil || e.Time.Before(since) {
				continue
			}
			if err := send(e); err != nil {
				return err
			}
		}
		if md, err := m.Metadata(); err == nil && md.NumPending == 0 && !caughtUp {
			caughtUp = true
			if err := flushHeld(); err != nil {
				return err
			}
			if !q.Follow {
				return nil
			}
		}
	}
}

// Purge deletes a function's log (the function was removed).
func (l *Log) Purge(ctx context.Context, function string) error {
	return l.stream.Purge(ctx, jetstream.WithPurgeSubject(subjectPrefix+function))
}
