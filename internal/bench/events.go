package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/pubsub"
)

// EventsConfig says how much to measure.
type EventsConfig struct {
	// Messages per throughput run, sent in requests of 1,000; default
	// 30,000. Raw one-at-a-time publishing sends a tenth of it.
	Messages int
	// Samples of publish-to-function latency; default 300.
	Samples           int
	InsecureNoSandbox bool
	Progress          func(string)
}

// EventsReport holds the figures of one events run, all measured in it.
type EventsReport struct {
	MessageSize int `json:"messageSize"`
	// RawPublish is JetStream publishing one message at a time, each
	// acknowledged (fsynced) before the next: the baseline.
	RawPublish    float64 `json:"rawPublishPerSec"`
	NativePublish float64 `json:"nativePublishPerSec"`
	GRPCPublish   float64 `json:"grpcPublishPerSec"`
	NativeConsume float64 `json:"nativeConsumePerSec"`
	GRPCConsume   float64 `json:"grpcConsumePerSec"`
	// Trigger latencies: from just before the publish call, and from the
	// broker's publish time, to the first line of a warm Go function's
	// handler.
	TriggerP50 time.Duration `json:"triggerP50"`
	TriggerP99 time.Duration `json:"triggerP99"`
	StoredP50  time.Duration `json:"storedP50"`
	StoredP99  time.Duration `json:"storedP99"`
}

const (
	evMsgSize = 1 << 10
	evBatch   = pubsub.MaxPublishBatch
)

// RunEvents measures Pub/Sub throughput through Duct's gRPC API and its
// native broker beside raw JetStream, and topic-trigger latency, in one
// run on loopback.
func RunEvents(ctx context.Context, cfg EventsConfig) (*EventsReport, error) {
	if cfg.Messages <= 0 {
		cfg.Messages = 30_000
	}
	cfg.Messages = max(evBatch, cfg.Messages/evBatch*evBatch)
	if cfg.Samples <= 0 {
		cfg.Samples = 300
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string) {}
	}
	rep := &EventsReport{MessageSize: evMsgSize}
	payload := make([]byte, evMsgSize)

	cfg.Progress("raw JetStream, one message at a time, fsync on")
	raw, err := rawPublish(ctx, cfg.Messages/10, payload)
	if err != nil {
		return nil, fmt.Errorf("raw JetStream: %w", err)
	}
	rep.RawPublish = raw

	dir, err := os.MkdirTemp("", "duct-bench-events-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	d, err := daemon.New(daemon.Config{Addr: "127.0.0.1:0", DataDir: dir, PubSubAddr: "127.0.0.1:0",
		InsecureNoSandbox: cfg.InsecureNoSandbox, AdminToken: adminToken, DefaultInvoke: duct.InvokePublic})
	if err != nil {
		return nil, err
	}
	if err := d.Start(ctx); err != nil {
		return nil, err
	}
	defer d.Shutdown(context.Background())
	svc := d.PubSub()

	cfg.Progress("native publish and consume")
	if rep.NativePublish, rep.NativeConsume, err = nativeRun(ctx, svc, cfg.Messages, payload); err != nil {
		return nil, fmt.Errorf("native: %w", err)
	}
	cfg.Progress("gRPC publish (1,000-message requests) and consume (StreamingPull)")
	if rep.GRPCPublish, rep.GRPCConsume, err = grpcRun(ctx, svc, d.PubSubAddr(), cfg.Messages, payload); err != nil {
		return nil, fmt.Errorf("gRPC: %w", err)
	}
	cfg.Progress("topic trigger latency to a warm Go function")
	if err := triggerLatency(ctx, d, svc, cfg.Samples, rep); err != nil {
		return nil, fmt.Errorf("trigger latency: %w", err)
	}
	return rep, nil
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// rawPublish publishes n messages one at a time to a stream of a separate
// embedded JetStream with the same fsync setting as Duct's.
func rawPublish(ctx context.Context, n int, payload []byte) (float64, error) {
	dir, err := os.MkdirTemp("", "duct-bench-raw-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	b, err := broker.Open(ctx, broker.Config{DataDir: dir})
	if err != nil {
		return 0, err
	}
	defer b.Close()
	if _, err := b.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw"}, Storage: jetstream.FileStorage}); err != nil {
		return 0, err
	}
	start := time.Now()
	for range n {
		if _, err := b.JS.Publish(ctx, "raw", payload); err != nil {
			return 0, err
		}
	}
	return rate(n, time.Since(start)), nil
}

func messages(payload []byte) []pubsub.Message {
	msgs := make([]pubsub.Message, evBatch)
	for i := range msgs {
		msgs[i] = pubsub.Message{Data: payload}
	}
	return msgs
}

func nativeRun(ctx context.Context, svc pubsub.Service, n int, payload []byte) (pubRate, subRate float64, err error) {
	if _, err := svc.CreateTopic(ctx, pubsub.Topic{Name: "bench-native"}); err != nil {
		return 0, 0, err
	}
	if _, err := svc.CreateSubscription(ctx, pubsub.Subscription{Name: "bench-native", Topic: "bench-native", AckDeadline: time.Minute}); err != nil {
		return 0, 0, err
	}
	msgs := messages(payload)
	start := time.Now()
	for range n / evBatch {
		if _, err := svc.Publish(ctx, "bench-native", msgs); err != nil {
			return 0, 0, err
		}
	}
	pubRate = rate(n, time.Since(start))
	stream, err := svc.StreamingPull(ctx, "bench-native", pubsub.StreamOptions{MaxOutstandingMessages: 5000})
	if err != nil {
		return 0, 0, err
	}
	defer stream.Close()
	got := 0
	start = time.Now()
	for got < n {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		recv, err := stream.Receive(rctx)
		cancel()
		if err != nil {
			return 0, 0, fmt.Errorf("after %d of %d: %w", got, n, err)
		}
		ids := make([]string, len(recv))
		for i, r := range recv {
			ids[i] = r.AckID
		}
		if err := svc.Acknowledge(ctx, "bench-native", ids); err != nil {
			return 0, 0, err
		}
		got += len(recv)
	}
	return pubRate, rate(got, time.Since(start)), nil
}

const benchProject = "duct-bench"

func grpcRun(ctx context.Context, svc pubsub.Service, addr string, n int, payload []byte) (pubRate, subRate float64, err error) {
	if addr == "" {
		return 0, 0, errors.New("the server serves no gRPC Pub/Sub")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(32<<20)))
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	pubc := pb.NewPublisherClient(conn)
	subc := pb.NewSubscriberClient(conn)
	topic := "projects/" + benchProject + "/topics/bench-grpc"
	sub := "projects/" + benchProject + "/subscriptions/bench-grpc"
	if _, err := pubc.CreateTopic(ctx, &pb.Topic{Name: topic}); err != nil {
		return 0, 0, err
	}
	if _, err := subc.CreateSubscription(ctx, &pb.Subscription{Name: sub, Topic: topic, AckDeadlineSeconds: 60}); err != nil {
		return 0, 0, err
	}
	req := &pb.PublishRequest{Topic: topic, Messages: make([]*pb.PubsubMessage, evBatch)}
	for i := range req.Messages {
		req.Messages[i] = &pb.PubsubMessage{Data: payload}
	}
	start := time.Now()
	for range n / evBatch {
		if _, err := pubc.Publish(ctx, req); err != nil {
			return 0, 0, err
		}
	}
	pubRate = rate(n, time.Since(start))

	// Consume with a plain StreamingPull, acking in batches as Google's
	// client does (its code stays out of the duct binary; the tests run
	// the client itself against the server).
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	stream, err := subc.StreamingPull(rctx)
	if err != nil {
		return 0, 0, err
	}
	if err := stream.Send(&pb.StreamingPullRequest{Subscription: sub, StreamAckDeadlineSeconds: 60,
		MaxOutstandingMessages: 10_000}); err != nil {
		return 0, 0, err
	}
	got := 0
	start = time.Now()
	for got < n {
		resp, err := stream.Recv()
		if err != nil {
			return 0, 0, fmt.Errorf("after %d of %d: %w", got, n, err)
		}
		if len(resp.ReceivedMessages) == 0 {
			continue
		}
		ids := make([]string, len(resp.ReceivedMessages))
		for i, m := range resp.ReceivedMessages {
			ids[i] = m.AckId
		}
		if err := stream.Send(&pb.StreamingPullRequest{AckIds: ids}); err != nil {
			return 0, 0, err
		}
		got += len(ids)
	}
	subRate = rate(got, time.Since(start))
	stream.CloseSend()
	return pubRate, subRate, nil
}

// latencyFunction answers how long ago its message was published, from
// the publisher's clock before the call (attribute t0) and from the
// broker's publish time, at the first line of its handler.
var latencyFunction = map[string]string{"fn.go": `package function

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

func Handle(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	var ev struct {
		Message struct {
			Attributes  map[string]string ` + "`json:\"attributes\"`" + `
			PublishTime time.Time         ` + "`json:\"publishTime\"`" + `
		} ` + "`json:\"message\"`" + `
	}
	json.NewDecoder(r.Body).Decode(&ev)
	t0, _ := strconv.ParseInt(ev.Message.Attributes["t0"], 10, 64)
	fmt.Fprintf(w, "%d %d", now.UnixNano()-t0, now.Sub(ev.Message.PublishTime).Nanoseconds())
}
`, "duct.yaml": "runtime: go\ntriggers:\n  - topic: {name: bench-latency}\n"}

func triggerLatency(ctx context.Context, d *daemon.Daemon, svc pubsub.Service, samples int, rep *EventsReport) error {
	got := make(chan [2]time.Duration, 1)
	d.Triggers().Observe(func(status int, body []byte) {
		var a, c int64
		if _, err := fmt.Sscanf(string(body), "%d %d", &a, &c); err != nil || status != 200 {
			a, c = -1, -1
		}
		select {
		case got <- [2]time.Duration{time.Duration(a), time.Duration(c)}:
		default:
		}
	})
	if err := deploy(ctx, d.URL(), "bench-latency", latencyFunction, ""); err != nil {
		return err
	}
	publish := func() error {
		_, err := svc.Publish(ctx, "bench-latency", []pubsub.Message{{Data: []byte("ping"),
			Attributes: map[string]string{"t0": strconv.FormatInt(time.Now().UnixNano(), 10)}}})
		return err
	}
	pubLat := make([]time.Duration, 0, samples)
	stored := make([]time.Duration, 0, samples)
	for i := range samples + 20 { // the first 20 warm the instance and connections
		if err := publish(); err != nil {
			return err
		}
		select {
		case l := <-got:
			if l[0] < 0 {
				return errors.New("the function did not answer 200")
			}
			if i >= 20 {
				pubLat, stored = append(pubLat, l[0]), append(stored, l[1])
			}
		case <-time.After(10 * time.Second):
			return errors.New("no delivery within 10 s")
		}
	}
	slices.Sort(pubLat)
	slices.Sort(stored)
	rep.TriggerP50, rep.TriggerP99 = percentile(pubLat, 0.5), percentile(pubLat, 0.99)
	rep.StoredP50, rep.StoredP99 = percentile(stored, 0.5), percentile(stored, 0.99)
	return nil
}

// Print writes the events report.
func (rep *EventsReport) Print(w io.Writer) {
	fmt.Fprintf(w, "\nPub/Sub, %d-byte messages, fsync on every write, same run\n", rep.MessageSize)
	fmt.Fprintf(w, "%-52s %12s %10s\n", "path", "msg/s", "× raw")
	row := func(name string, v float64) {
		fmt.Fprintf(w, "%-52s %12.0f %10.1f\n", name, v, v/rep.RawPublish)
	}
	row("raw JetStream publish, one message at a time", rep.RawPublish)
	row("Duct native publish, 1,000-message requests", rep.NativePublish)
	row("Duct gRPC publish, 1,000-message requests", rep.GRPCPublish)
	row("Duct native consume (streaming pull + ack)", rep.NativeConsume)
	row("Duct gRPC consume (StreamingPull + ack)", rep.GRPCConsume)
	fmt.Fprintf(w, "(targets: ≥ 30,000 msg/s durable through gRPC, ≥ 8× raw one-at-a-time)\n")
	fmt.Fprintf(w, "\nTopic trigger, publish to a warm Go function's first line: p50 %s, p99 %s\n", ms(rep.TriggerP50), ms(rep.TriggerP99))
	fmt.Fprintf(w, "  from the broker's publish time (after the fsync): p50 %s, p99 %s\n", ms(rep.StoredP50), ms(rep.StoredP99))
	fmt.Fprintf(w, "(target p50 ≤ 2 ms)\n")
}
