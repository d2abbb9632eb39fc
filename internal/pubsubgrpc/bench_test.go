package pubsubgrpc_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duct-dev/duct/internal/broker"
	"github.com/duct-dev/duct/internal/pubsub"
	"github.com/duct-dev/duct/internal/pubsubgrpc"
)

// The benchmarks measure publish and consume throughput of 1 KiB
// messages through the gRPC API and, in the same run, through the broker
// directly (the native path), on embedded JetStream with fsync on every
// write. Each op is 1,000 messages (one publish request); msg/s is the
// figure to read.
//
//	go test -run '^$' -bench . -benchtime 30x ./internal/pubsubgrpc/

const (
	batch   = 1000
	msgSize = 1 << 10
)

// rig is a broker, the gRPC server in front of it, and Google's client.
type rig struct {
	svc  *pubsub.Broker
	pubc pb.PublisherClient
	c    *gpubsub.Client
}

func newRig(b *testing.B) rig {
	b.Helper()
	ctx := context.Background()
	br, err := broker.Open(ctx, broker.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	svc, err := pubsub.New(ctx, br, pubsub.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(svc.Close)
	srv := pubsubgrpc.New(pubsubgrpc.Config{Service: svc})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c, err := gpubsub.NewClient(ctx, project, option.WithEndpoint(ln.Addr().String()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return rig{svc: svc, pubc: pb.NewPublisherClient(conn), c: c}
}

func (r rig) topic(b *testing.B, name string, subs ...string) {
	b.Helper()
	ctx := context.Background()
	if _, err := r.svc.CreateTopic(ctx, pubsub.Topic{Name: name}); err != nil {
		b.Fatal(err)
	}
	for _, s := range subs {
		if _, err := r.svc.CreateSubscription(ctx, pubsub.Subscription{Name: s, Topic: name}); err != nil {
			b.Fatal(err)
		}
	}
}

var seq atomic.Int64

// uniq names a topic: each run of a benchmark function gets its own.
func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

func payload() []byte {
	p := make([]byte, msgSize)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return p
}

func reportRate(b *testing.B, msgs int) {
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msg/s")
}

func BenchmarkPublish(b *testing.B) {
	r := newRig(b)
	data := payload()
	pbReq := func(topic string) *pb.PublishRequest {
		req := &pb.PublishRequest{Topic: topicPath(topic)}
		for range batch {
			req.Messages = append(req.Messages, &pb.PubsubMessage{Data: data})
		}
		return req
	}
	native := make([]pubsub.Message, batch)
	for i := range native {
		native[i] = pubsub.Message{Data: data}
	}
	for _, par := range []int{1, 4} {
		b.Run(fmt.Sprintf("grpc/publishers=%d", par), func(b *testing.B) {
			topic := uniq("bench-grpc")
			r.topic(b, topic)
			req := pbReq(topic)
			b.ResetTimer()
			runParallel(b, par, func() error {
				_, err := r.pubc.Publish(context.Background(), req)
				return err
			})
			reportRate(b, b.N*batch)
		})
		b.Run(fmt.Sprintf("native/publishers=%d", par), func(b *testing.B) {
			topic := uniq("bench-native")
			r.topic(b, topic)
			b.ResetTimer()
			runParallel(b, par, func() error {
				_, err := r.svc.Publish(context.Background(), topic, native)
				return err
			})
			reportRate(b, b.N*batch)
		})
	}
}

// runParallel runs op b.N times over par goroutines.
func runParallel(b *testing.B, par int, op func() error) {
	var next atomic.Int64
	errs := make(chan error, par)
	for range par {
		go func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range par {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConsume(b *testing.B) {
	r := newRig(b)
	data := payload()
	msgs := make([]pubsub.Message, batch)
	for i := range msgs {
		msgs[i] = pubsub.Message{Data: data}
	}
	fill := func(b *testing.B, topic string) {
		b.Helper()
		for range b.N {
			if _, err := r.svc.Publish(context.Background(), topic, msgs); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("grpc-streamingpull", func(b *testing.B) {
		topic := uniq("bench-consume-grpc")
		r.topic(b, topic, topic+"-sub")
		fill(b, topic)
		sub := r.c.Subscriber(topic + "-sub")
		sub.ReceiveSettings.MaxOutstandingMessages = 10 * batch
		want := int64(b.N * batch)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var got atomic.Int64
		b.ResetTimer()
		err := sub.Receive(ctx, func(_ context.Context, m *gpubsub.Message) {
			m.Ack()
			if got.Add(1) == want {
				cancel()
			}
		})
		b.StopTimer()
		if err != nil || got.Load() < want {
			b.Fatalf("received %d of %d: %v", got.Load(), want, err)
		}
		reportRate(b, int(want))
	})
	b.Run("native-stream", func(b *testing.B) {
		topic := uniq("bench-consume-native")
		r.topic(b, topic, topic+"-sub")
		fill(b, topic)
		ctx := context.Background()
		b.ResetTimer()
		st, err := r.svc.StreamingPull(ctx, topic+"-sub", pubsub.StreamOptions{MaxOutstandingMessages: 10 * batch})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		for got := 0; got < b.N*batch; {
			rs, err := st.Receive(ctx)
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]string, len(rs))
			for i, m := range rs {
				ids[i] = m.AckID
			}
			if err := r.svc.Acknowledge(ctx, topic+"-sub", ids); err != nil {
				b.Fatal(err)
			}
			got += len(rs)
		}
		b.StopTimer()
		reportRate(b, b.N*batch)
	})
}
