package pubsub

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Durable throughput: fsync on (the embedded server's default), 1 KiB
// messages. Each benchmark measures raw JetStream publishing one message
// at a time on the same server first, the baseline Duct's batching is
// compared with (metrics raw-msg/s and x-raw).
//
//	go test -run '^$' -bench . -benchtime 3s ./internal/pubsub/

const benchMsgSize = 1024

func benchMessages(n int) []Message {
	msgs := make([]Message, n)
	data := make([]byte, benchMsgSize)
	for i := range msgs {
		msgs[i] = Message{Data: data}
	}
	return msgs
}

// rawRate publishes n 1 KiB messages one at a time, each waiting for its
// ack, and returns messages per second. Benchmarks measure it before and
// after their own loop and report the mean: the disk's sync rate drifts.
func rawRate(b *testing.B, js jetstream.JetStream, n int) float64 {
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, benchMsgSize)
	start := time.Now()
	for range n {
		if _, err := js.Publish(ctx, "raw", data); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

func reportRates(b *testing.B, msgs int, js jetstream.JetStream, rawBefore float64) {
	rate := float64(msgs) / b.Elapsed().Seconds()
	b.StopTimer()
	raw := (rawBefore + rawRate(b, js, 500)) / 2
	b.ReportMetric(rate, "msg/s")
	b.ReportMetric(raw, "raw-msg/s")
	b.ReportMetric(rate/raw, "x-raw")
}

// BenchmarkPublish1000: one publisher, Publish requests of 1,000
// messages.
func BenchmarkPublish1000(b *testing.B) {
	p, nb := testBroker(b)
	raw := rawRate(b, nb.JS, 500)
	topic, _ := topicAndSub(b, p, Subscription{})
	msgs := benchMessages(MaxPublishBatch)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := p.Publish(ctx, topic, msgs); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, b.N*len(msgs), nb.JS, raw)
}

// BenchmarkPublish1000Parallel: four publishers, requests of 1,000.
func BenchmarkPublish1000Parallel(b *testing.B) {
	p, nb := testBroker(b)
	raw := rawRate(b, nb.JS, 500)
	topic, _ := topicAndSub(b, p, Subscription{})
	msgs := benchMessages(MaxPublishBatch)
	ctx := context.Background()
	b.ResetTimer()
	var wg sync.WaitGroup
	next := make(chan struct{}, b.N)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if _, err := p.Publish(ctx, topic, msgs); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	reportRates(b, b.N*len(msgs), nb.JS, raw)
}

// BenchmarkPublishSingles: 64 publishers of one message per request,
// coalesced into batches.
func BenchmarkPublishSingles(b *testing.B) {
	p, nb := testBroker(b)
	raw := rawRate(b, nb.JS, 500)
	topic, _ := topicAndSub(b, p, Subscription{})
	msgs := benchMessages(1)
	ctx := context.Background()
	b.ResetTimer()
	var wg sync.WaitGroup
	next := make(chan struct{}, b.N)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if _, err := p.Publish(ctx, topic, msgs); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	reportRates(b, b.N, nb.JS, raw)
}

// BenchmarkConsume: Pull up to 1,000 messages, then Acknowledge them.
func BenchmarkConsume(b *testing.B) {
	p, _ := testBroker(b)
	topic, sub := topicAndSub(b, p, Subscription{})
	msgs := benchMessages(MaxPublishBatch)
	ctx := context.Background()
	backlog := 0
	delivered := 0
	b.ResetTimer()
	for range b.N {
		if backlog < MaxPublishBatch {
			b.StopTimer()
			for range 10 {
				if _, err := p.Publish(ctx, topic, msgs); err != nil {
					b.Fatal(err)
				}
				backlog += len(msgs)
			}
			b.StartTimer()
		}
		got, err := p.Pull(ctx, sub, MaxPullMessages, true)
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]string, len(got))
		for i, r := range got {
			ids[i] = r.AckID
		}
		if err := p.Acknowledge(ctx, sub, ids); err != nil {
			b.Fatal(err)
		}
		backlog -= len(got)
		delivered += len(got)
	}
	b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "msg/s")
}
