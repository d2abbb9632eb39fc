package pubsubgrpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/duct-dev/duct/internal/ducttest"
)

// project is any project id: Duct serves one namespace whatever it is.
const project = "duct-test"

func topicPath(id string) string { return "projects/" + project + "/topics/" + id }
func subPath(id string) string   { return "projects/" + project + "/subscriptions/" + id }

// env is a Duct server serving the gRPC API and Google's client for it.
type env struct {
	s *ducttest.Server
	c *gpubsub.Client
}

// start runs Duct with the Pub/Sub port and returns Google's client for
// it, found through PUBSUB_EMULATOR_HOST as applications find it.
func start(t *testing.T) env {
	t.Helper()
	s := ducttest.Start(t, ducttest.WithPubSub)
	t.Setenv("PUBSUB_EMULATOR_HOST", s.PubSubAddr())
	c, err := gpubsub.NewClient(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return env{s, c}
}

func (e env) topic(t *testing.T, id string) {
	t.Helper()
	if _, err := e.c.TopicAdminClient.CreateTopic(t.Context(), &pb.Topic{Name: topicPath(id)}); err != nil {
		t.Fatalf("create topic %s: %v", id, err)
	}
}

// sub creates subscription id on topic with the settings of s.
func (e env) sub(t *testing.T, id, topic string, s *pb.Subscription) {
	t.Helper()
	if s == nil {
		s = &pb.Subscription{}
	}
	s.Name, s.Topic = subPath(id), topicPath(topic)
	if _, err := e.c.SubscriptionAdminClient.CreateSubscription(t.Context(), s); err != nil {
		t.Fatalf("create subscription %s: %v", id, err)
	}
}

func (e env) publish(t *testing.T, p *gpubsub.Publisher, msgs ...*gpubsub.Message) []string {
	t.Helper()
	var results []*gpubsub.PublishResult
	for _, m := range msgs {
		results = append(results, p.Publish(t.Context(), m))
	}
	ids := make([]string, len(results))
	for i, r := range results {
		id, err := r.Get(t.Context())
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		ids[i] = id
	}
	return ids
}

// receive runs Receive on sub until handle has seen n messages or the
// timeout passes; handle says whether to ack (else nack). It returns the
// messages seen, in the order handle saw them.
func receive(t *testing.T, sub *gpubsub.Subscriber, n int, timeout time.Duration, handle func(m *gpubsub.Message) bool) []*gpubsub.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var mu sync.Mutex // guards got
	var got []*gpubsub.Message
	err := sub.Receive(ctx, func(_ context.Context, m *gpubsub.Message) {
		mu.Lock()
		got = append(got, m)
		done := len(got) >= n
		mu.Unlock()
		if handle == nil || handle(m) {
			m.Ack()
		} else {
			m.Nack()
		}
		if done {
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: %v (code %s), want code %s", what, err, got, want)
	}
}

// TestGoogleClient drives Duct with Google's own Go client, as an
// application pointed at it with PUBSUB_EMULATOR_HOST would.
func TestGoogleClient(t *testing.T) {
	e := start(t)

	t.Run("PublishReceiveAck", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "greetings")
		e.sub(t, "greetings-sub", "greetings", nil)
		p := e.c.Publisher("greetings")
		defer p.Stop()
		ids := e.publish(t, p, &gpubsub.Message{Data: []byte("hello"), Attributes: map[string]string{"lang": "en"}})
		got := receive(t, e.c.Subscriber("greetings-sub"), 1, 20*time.Second, nil)
		if len(got) != 1 || string(got[0].Data) != "hello" || got[0].Attributes["lang"] != "en" || got[0].ID != ids[0] ||
			got[0].PublishTime.IsZero() || got[0].DeliveryAttempt != nil {
			t.Fatalf("received %+v, want the message %s", got, ids[0])
		}
		// Acknowledged: a new Receive finds nothing.
		if again := receive(t, e.c.Subscriber("greetings-sub"), 1, time.Second, nil); len(again) != 0 {
			t.Errorf("an acked message came again: %q", again[0].Data)
		}
	})

	t.Run("NackRedelivers", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "nacked")
		e.sub(t, "nacked-sub", "nacked", nil)
		p := e.c.Publisher("nacked")
		defer p.Stop()
		id := e.publish(t, p, &gpubsub.Message{Data: []byte("again")})[0]
		var n atomic.Int32
		got := receive(t, e.c.Subscriber("nacked-sub"), 3, 20*time.Second, func(m *gpubsub.Message) bool {
			return n.Add(1) == 3 // nack twice, then ack
		})
		for _, m := range got {
			if m.ID != id {
				t.Errorf("got message %s, want %s three times", m.ID, id)
			}
		}
		if len(got) != 3 {
			t.Fatalf("delivered %d times, want 3 (two nacks, then an ack)", len(got))
		}
	})

	t.Run("DeadLetter", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "work")
		e.topic(t, "work-failed")
		e.sub(t, "work-failed-sub", "work-failed", nil)
		e.sub(t, "work-sub", "work", &pb.Subscription{
			DeadLetterPolicy: &pb.DeadLetterPolicy{DeadLetterTopic: topicPath("work-failed"), MaxDeliveryAttempts: 5},
		})
		p := e.c.Publisher("work")
		defer p.Stop()
		id := e.publish(t, p, &gpubsub.Message{Data: []byte("poison"), Attributes: map[string]string{"k": "v"}})[0]
		var mu sync.Mutex // guards attempts
		var attempts []int
		receive(t, e.c.Subscriber("work-sub"), 5, 30*time.Second, func(m *gpubsub.Message) bool {
			mu.Lock()
			defer mu.Unlock()
			if m.DeliveryAttempt == nil {
				t.Error("delivery attempt is not set on a subscription with a dead-letter policy")
			} else {
				attempts = append(attempts, *m.DeliveryAttempt)
			}
			return false
		})
		if fmt.Sprint(attempts) != "[1 2 3 4 5]" {
			t.Errorf("delivery attempts %v, want [1 2 3 4 5]", attempts)
		}
		dead := receive(t, e.c.Subscriber("work-failed-sub"), 1, 20*time.Second, nil)
		if len(dead) != 1 || string(dead[0].Data) != "poison" || dead[0].Attributes["k"] != "v" {
			t.Fatalf("dead-letter topic got %+v, want the poison message", dead)
		}
		// The server's own project names the source: it holds one
		// namespace whatever project a client names.
		if src := dead[0].Attributes["CloudPubSubDeadLetterSourceSubscription"]; !strings.HasSuffix(src, "/subscriptions/work-sub") {
			t.Errorf("dead letter's source subscription attribute = %q (message %s)", src, id)
		}
		if again := receive(t, e.c.Subscriber("work-sub"), 1, time.Second, nil); len(again) != 0 {
			t.Errorf("a dead-lettered message came again on its subscription")
		}
	})

	t.Run("OrderingKeys", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "ordered")
		e.sub(t, "ordered-sub", "ordered", &pb.Subscription{EnableMessageOrdering: true})
		p := e.c.Publisher("ordered")
		p.EnableMessageOrdering = true
		defer p.Stop()
		const perKey = 50
		var msgs []*gpubsub.Message
		for i := range perKey {
			for _, k := range []string{"a", "b", "c"} {
				msgs = append(msgs, &gpubsub.Message{Data: []byte(strconv.Itoa(i)), OrderingKey: k})
			}
		}
		e.publish(t, p, msgs...)
		// Message 10 of key b is nacked once: it and the messages after
		// it on key b come again, in order. Until it does, this handler
		// nacks whatever key b brings (as an application that wants order
		// would), so the acknowledged messages of each key must be
		// exactly 0, 1, 2... in order.
		var mu sync.Mutex // guards next and holding
		next := map[string]int{}
		holding, failed := false, false
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		err := e.c.Subscriber("ordered-sub").Receive(ctx, func(_ context.Context, m *gpubsub.Message) {
			mu.Lock()
			defer mu.Unlock()
			n, _ := strconv.Atoi(string(m.Data))
			switch {
			case m.OrderingKey == "b" && n == 10 && !failed:
				failed, holding = true, true
				m.Nack()
				return
			case m.OrderingKey == "b" && holding && n != 10:
				m.Nack()
				return
			case m.OrderingKey == "b" && holding:
				holding = false
			}
			if n != next[m.OrderingKey] {
				t.Errorf("key %s: got message %d, want %d", m.OrderingKey, n, next[m.OrderingKey])
			}
			next[m.OrderingKey] = n + 1
			m.Ack()
			if next["a"] == perKey && next["b"] == perKey && next["c"] == perKey {
				cancel()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if next["a"] != perKey || next["b"] != perKey || next["c"] != perKey || !failed {
			t.Errorf("acknowledged per key up to %v; want %d of each key in order", next, perKey)
		}
	})

	t.Run("Filter", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "uploads")
		e.sub(t, "images", "uploads", &pb.Subscription{Filter: `attributes.kind = "image"`})
		p := e.c.Publisher("uploads")
		defer p.Stop()
		e.publish(t, p,
			&gpubsub.Message{Data: []byte("a.txt"), Attributes: map[string]string{"kind": "text"}},
			&gpubsub.Message{Data: []byte("b.png"), Attributes: map[string]string{"kind": "image"}},
			&gpubsub.Message{Data: []byte("c")},
			&gpubsub.Message{Data: []byte("d.jpg"), Attributes: map[string]string{"kind": "image"}},
		)
		got := receive(t, e.c.Subscriber("images"), 2, 20*time.Second, nil)
		var names []string
		for _, m := range got {
			names = append(names, string(m.Data))
		}
		slices.Sort(names) // Receive calls its callback concurrently
		if fmt.Sprint(names) != "[b.png d.jpg]" {
			t.Errorf("filtered subscription got %v, want [b.png d.jpg]", names)
		}
		if more := receive(t, e.c.Subscriber("images"), 1, time.Second, nil); len(more) > 0 {
			t.Errorf("filtered subscription got %q too", more[0].Data)
		}
		s, err := e.c.SubscriptionAdminClient.GetSubscription(t.Context(), &pb.GetSubscriptionRequest{Subscription: subPath("images")})
		if err != nil || s.Filter != `attributes.kind = "image"` {
			t.Errorf("get: %v, filter %q", err, s.GetFilter())
		}
	})

	t.Run("SeekToTime", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "replayed")
		e.sub(t, "replayed-sub", "replayed", nil)
		p := e.c.Publisher("replayed")
		defer p.Stop()
		e.publish(t, p, &gpubsub.Message{Data: []byte("old")})
		time.Sleep(50 * time.Millisecond)
		mark := time.Now()
		time.Sleep(50 * time.Millisecond)
		e.publish(t, p, &gpubsub.Message{Data: []byte("new-1")}, &gpubsub.Message{Data: []byte("new-2")})
		if got := receive(t, e.c.Subscriber("replayed-sub"), 3, 20*time.Second, nil); len(got) != 3 {
			t.Fatalf("received %d messages before the seek, want 3", len(got))
		}
		_, err := e.c.SubscriptionAdminClient.Seek(t.Context(), &pb.SeekRequest{
			Subscription: subPath("replayed-sub"), Target: &pb.SeekRequest_Time{Time: timestamppb.New(mark)},
		})
		if err != nil {
			t.Fatalf("seek: %v", err)
		}
		got := receive(t, e.c.Subscriber("replayed-sub"), 2, 20*time.Second, nil)
		seen := map[string]bool{}
		for _, m := range got {
			seen[string(m.Data)] = true
		}
		if len(got) != 2 || !seen["new-1"] || !seen["new-2"] {
			t.Errorf("after seeking to the mark got %d messages %v, want new-1 and new-2", len(got), seen)
		}
		_, err = e.c.SubscriptionAdminClient.Seek(t.Context(), &pb.SeekRequest{
			Subscription: subPath("replayed-sub"), Target: &pb.SeekRequest_Snapshot{Snapshot: "projects/" + project + "/snapshots/s"},
		})
		wantCode(t, "seek to a snapshot", err, codes.Unimplemented)
	})

	t.Run("TenMegabytes", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "big")
		e.sub(t, "big-sub", "big", nil)
		p := e.c.Publisher("big")
		defer p.Stop()
		// The client refuses requests over 10,000,000 bytes: the largest
		// message it sends is a little less.
		data := bytes.Repeat([]byte("0123456789abcdef"), 9_990_000/16)
		e.publish(t, p, &gpubsub.Message{Data: data})
		got := receive(t, e.c.Subscriber("big-sub"), 1, 30*time.Second, nil)
		if len(got) != 1 || !bytes.Equal(got[0].Data, data) {
			t.Fatalf("received %d messages; want the %d-byte one back intact", len(got), len(data))
		}
		// Over 10 MiB: refused as Google does, with INVALID_ARGUMENT.
		_, err := e.c.TopicAdminClient.Publish(t.Context(), &pb.PublishRequest{
			Topic: topicPath("big"), Messages: []*pb.PubsubMessage{{Data: make([]byte, 10<<20+1)}},
		})
		wantCode(t, "publishing 10 MiB + 1", err, codes.InvalidArgument)
	})

	t.Run("ThousandMessagePublish", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "bulk")
		e.sub(t, "bulk-sub", "bulk", nil)
		req := &pb.PublishRequest{Topic: topicPath("bulk")}
		for i := range 1000 {
			req.Messages = append(req.Messages, &pb.PubsubMessage{Data: []byte(strconv.Itoa(i))})
		}
		resp, err := e.c.TopicAdminClient.Publish(t.Context(), req)
		if err != nil || len(resp.MessageIds) != 1000 {
			t.Fatalf("publish 1000: %v (%d ids)", err, len(resp.GetMessageIds()))
		}
		sub := e.c.Subscriber("bulk-sub")
		seen := map[string]bool{}
		for _, m := range receive(t, sub, 1000, 30*time.Second, nil) {
			seen[string(m.Data)] = true
		}
		if len(seen) != 1000 {
			t.Errorf("received %d distinct messages of 1000", len(seen))
		}
		req.Messages = append(req.Messages, &pb.PubsubMessage{Data: []byte("1001")})
		_, err = e.c.TopicAdminClient.Publish(t.Context(), req)
		wantCode(t, "publishing 1001 messages", err, codes.InvalidArgument)
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		_, err := e.c.TopicAdminClient.GetTopic(t.Context(), &pb.GetTopicRequest{Topic: topicPath("absent")})
		wantCode(t, "get an unknown topic", err, codes.NotFound)
		_, err = e.c.SubscriptionAdminClient.GetSubscription(t.Context(), &pb.GetSubscriptionRequest{Subscription: subPath("absent")})
		wantCode(t, "get an unknown subscription", err, codes.NotFound)
		p := e.c.Publisher("absent")
		defer p.Stop()
		_, err = p.Publish(t.Context(), &gpubsub.Message{Data: []byte("x")}).Get(t.Context())
		wantCode(t, "publish to an unknown topic", err, codes.NotFound)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		err = e.c.Subscriber("absent").Receive(ctx, func(context.Context, *gpubsub.Message) {})
		wantCode(t, "receive from an unknown subscription", err, codes.NotFound)
		_, err = e.c.SubscriptionAdminClient.CreateSubscription(t.Context(), &pb.Subscription{Name: subPath("orphan"), Topic: topicPath("absent")})
		wantCode(t, "subscribe to an unknown topic", err, codes.NotFound)
		err = e.c.TopicAdminClient.DeleteTopic(t.Context(), &pb.DeleteTopicRequest{Topic: topicPath("absent")})
		wantCode(t, "delete an unknown topic", err, codes.NotFound)
	})

	t.Run("BadInput", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"1starts-with-digit", "goog-reserved", "ab", "has/slash"} {
			_, err := e.c.TopicAdminClient.CreateTopic(t.Context(), &pb.Topic{Name: "projects/" + project + "/topics/" + name})
			wantCode(t, "create topic "+name, err, codes.InvalidArgument)
		}
		for _, full := range []string{"bare-name", "projects//topics/x", "projects/p/subscriptions/x", "projects/p/topics/"} {
			_, err := e.c.TopicAdminClient.CreateTopic(t.Context(), &pb.Topic{Name: full})
			wantCode(t, "create topic "+full, err, codes.InvalidArgument)
		}
		e.topic(t, "dup")
		_, err := e.c.TopicAdminClient.CreateTopic(t.Context(), &pb.Topic{Name: topicPath("dup")})
		wantCode(t, "create a topic twice", err, codes.AlreadyExists)
		e.sub(t, "dup-sub", "dup", nil)
		_, err = e.c.SubscriptionAdminClient.CreateSubscription(t.Context(), &pb.Subscription{Name: subPath("dup-sub"), Topic: topicPath("dup")})
		wantCode(t, "create a subscription twice", err, codes.AlreadyExists)
		for what, s := range map[string]*pb.Subscription{
			"ack deadline 5 s":      {AckDeadlineSeconds: 5},
			"ack deadline 601 s":    {AckDeadlineSeconds: 601},
			"a bad filter":          {Filter: `attributes.kind = `},
			"4 dead-letter tries":   {DeadLetterPolicy: &pb.DeadLetterPolicy{DeadLetterTopic: topicPath("dup"), MaxDeliveryAttempts: 4}},
			"backoff max below min": {RetryPolicy: &pb.RetryPolicy{MinimumBackoff: durationpb.New(time.Minute), MaximumBackoff: durationpb.New(time.Second)}},
		} {
			s.Name, s.Topic = subPath("bad-sub"), topicPath("dup")
			_, err := e.c.SubscriptionAdminClient.CreateSubscription(t.Context(), s)
			wantCode(t, "subscription with "+what, err, codes.InvalidArgument)
		}
		_, err = e.c.SubscriptionAdminClient.CreateSubscription(t.Context(), &pb.Subscription{
			Name: subPath("eod-sub"), Topic: topicPath("dup"), EnableExactlyOnceDelivery: true,
		})
		wantCode(t, "exactly-once delivery", err, codes.Unimplemented)
		_, err = e.c.TopicAdminClient.Publish(t.Context(), &pb.PublishRequest{Topic: topicPath("dup"), Messages: []*pb.PubsubMessage{{}}})
		wantCode(t, "publishing an empty message", err, codes.InvalidArgument)
		big := map[string]string{}
		for i := range 101 {
			big[strconv.Itoa(i)] = "v"
		}
		_, err = e.c.TopicAdminClient.Publish(t.Context(), &pb.PublishRequest{Topic: topicPath("dup"), Messages: []*pb.PubsubMessage{{Attributes: big}}})
		wantCode(t, "publishing 101 attributes", err, codes.InvalidArgument)
		err = e.c.SubscriptionAdminClient.ModifyAckDeadline(t.Context(), &pb.ModifyAckDeadlineRequest{
			Subscription: subPath("dup-sub"), AckIds: []string{"x"}, AckDeadlineSeconds: 601,
		})
		wantCode(t, "an ack deadline of 601 s", err, codes.InvalidArgument)
		// Nothing of the refused calls was created.
		_, err = e.c.SubscriptionAdminClient.GetSubscription(t.Context(), &pb.GetSubscriptionRequest{Subscription: subPath("bad-sub")})
		wantCode(t, "a refused subscription", err, codes.NotFound)
	})

	t.Run("Admin", func(t *testing.T) {
		t.Parallel()
		admin := e.c.TopicAdminClient
		_, err := admin.CreateTopic(t.Context(), &pb.Topic{Name: topicPath("admin-t"), Labels: map[string]string{"team": "a"},
			MessageRetentionDuration: durationpb.New(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		// Another project names the same topic.
		got, err := admin.GetTopic(t.Context(), &pb.GetTopicRequest{Topic: "projects/other/topics/admin-t"})
		if err != nil || got.Name != "projects/other/topics/admin-t" || got.Labels["team"] != "a" ||
			got.MessageRetentionDuration.AsDuration() != 24*time.Hour {
			t.Fatalf("get through another project: %v %v", got, err)
		}
		up, err := admin.UpdateTopic(t.Context(), &pb.UpdateTopicRequest{
			Topic: &pb.Topic{Name: topicPath("admin-t"), Labels: map[string]string{"team": "b"}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}},
		})
		if err != nil || up.Labels["team"] != "b" || up.MessageRetentionDuration.AsDuration() != 24*time.Hour {
			t.Errorf("update labels: %v %v", up, err)
		}
		for i := range 3 {
			e.sub(t, "admin-s"+strconv.Itoa(i), "admin-t", nil)
		}
		// Pages of two.
		var names []string
		it := admin.ListTopicSubscriptions(t.Context(), &pb.ListTopicSubscriptionsRequest{Topic: topicPath("admin-t"), PageSize: 2})
		for {
			n, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		if fmt.Sprint(names) != fmt.Sprintf("[%s %s %s]", subPath("admin-s0"), subPath("admin-s1"), subPath("admin-s2")) {
			t.Errorf("topic subscriptions: %v", names)
		}
		// Every topic and subscription, in pages, sorted, each once.
		var all []string
		tit := admin.ListTopics(t.Context(), &pb.ListTopicsRequest{Project: "projects/" + project, PageSize: 2})
		for tp, err := tit.Next(); !errors.Is(err, iterator.Done); tp, err = tit.Next() {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, tp.Name)
		}
		if !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != len(all) || !slices.Contains(all, topicPath("admin-t")) {
			t.Errorf("topics in pages of 2: %v", all)
		}
		all = nil
		sit := e.c.SubscriptionAdminClient.ListSubscriptions(t.Context(), &pb.ListSubscriptionsRequest{Project: "projects/" + project, PageSize: 2})
		for sb, err := sit.Next(); !errors.Is(err, iterator.Done); sb, err = sit.Next() {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, sb.Name)
			if sb.Name == subPath("admin-s1") && (sb.Topic != topicPath("admin-t") || sb.AckDeadlineSeconds != 10) {
				t.Errorf("listed %v", sb)
			}
		}
		if !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != len(all) || !slices.Contains(all, subPath("admin-s1")) {
			t.Errorf("subscriptions in pages of 2: %v", all)
		}
		sa := e.c.SubscriptionAdminClient
		s, err := sa.UpdateSubscription(t.Context(), &pb.UpdateSubscriptionRequest{
			Subscription: &pb.Subscription{Name: subPath("admin-s0"), AckDeadlineSeconds: 30,
				RetryPolicy: &pb.RetryPolicy{MinimumBackoff: durationpb.New(time.Second)}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"ack_deadline_seconds", "retry_policy"}},
		})
		if err != nil || s.AckDeadlineSeconds != 30 || s.RetryPolicy.GetMinimumBackoff().AsDuration() != time.Second ||
			s.RetryPolicy.GetMaximumBackoff().AsDuration() != 600*time.Second || s.Topic != topicPath("admin-t") {
			t.Errorf("update subscription: %v %v", s, err)
		}
		_, err = sa.UpdateSubscription(t.Context(), &pb.UpdateSubscriptionRequest{
			Subscription: &pb.Subscription{Name: subPath("admin-s0"), Filter: "attributes.x = \"y\""},
			UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"filter"}},
		})
		wantCode(t, "updating a filter", err, codes.InvalidArgument)
		err = sa.ModifyPushConfig(t.Context(), &pb.ModifyPushConfigRequest{Subscription: subPath("admin-s1"),
			PushConfig: &pb.PushConfig{PushEndpoint: "http://127.0.0.1:9/push"}})
		if err != nil {
			t.Errorf("modify push config: %v", err)
		}
		s, err = sa.GetSubscription(t.Context(), &pb.GetSubscriptionRequest{Subscription: subPath("admin-s1")})
		if err != nil || s.PushConfig.GetPushEndpoint() != "http://127.0.0.1:9/push" {
			t.Errorf("push endpoint after ModifyPushConfig: %v %v", s, err)
		}
		_, err = admin.DetachSubscription(t.Context(), &pb.DetachSubscriptionRequest{Subscription: subPath("admin-s2")})
		wantCode(t, "detach", err, codes.Unimplemented)
		_, err = sa.CreateSnapshot(t.Context(), &pb.CreateSnapshotRequest{Name: "projects/p/snapshots/s", Subscription: subPath("admin-s2")})
		wantCode(t, "create a snapshot", err, codes.Unimplemented)
		if _, err := sa.ListSnapshots(t.Context(), &pb.ListSnapshotsRequest{Project: "projects/" + project}).Next(); !errors.Is(err, iterator.Done) {
			t.Errorf("list snapshots: %v, want none", err)
		}

		// A deleted topic leaves its subscriptions, naming _deleted-topic_.
		if err := admin.DeleteTopic(t.Context(), &pb.DeleteTopicRequest{Topic: topicPath("admin-t")}); err != nil {
			t.Fatal(err)
		}
		s, err = sa.GetSubscription(t.Context(), &pb.GetSubscriptionRequest{Subscription: subPath("admin-s2")})
		if err != nil || s.Topic != "_deleted-topic_" {
			t.Errorf("subscription of a deleted topic: %v %v", s, err)
		}
		// Written back as read, it updates.
		s.AckDeadlineSeconds = 20
		if up, err := sa.UpdateSubscription(t.Context(), &pb.UpdateSubscriptionRequest{Subscription: s,
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"ack_deadline_seconds"}}}); err != nil || up.AckDeadlineSeconds != 20 {
			t.Errorf("update a subscription of a deleted topic: %v %v", up, err)
		}
		if err := sa.DeleteSubscription(t.Context(), &pb.DeleteSubscriptionRequest{Subscription: subPath("admin-s2")}); err != nil {
			t.Errorf("delete subscription: %v", err)
		}
		_, err = sa.GetSubscription(t.Context(), &pb.GetSubscriptionRequest{Subscription: subPath("admin-s2")})
		wantCode(t, "a deleted subscription", err, codes.NotFound)
	})

	t.Run("UnaryPull", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "pulled")
		e.sub(t, "pulled-sub", "pulled", nil)
		sa := e.c.SubscriptionAdminClient
		// A waiting pull answers when a message arrives.
		type result struct {
			resp *pb.PullResponse
			err  error
		}
		done := make(chan result, 1)
		go func() {
			resp, err := sa.Pull(t.Context(), &pb.PullRequest{Subscription: subPath("pulled-sub"), MaxMessages: 10})
			done <- result{resp, err}
		}()
		time.Sleep(200 * time.Millisecond)
		if _, err := e.c.TopicAdminClient.Publish(t.Context(), &pb.PublishRequest{Topic: topicPath("pulled"),
			Messages: []*pb.PubsubMessage{{Data: []byte("one")}}}); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || len(r.resp.ReceivedMessages) != 1 || string(r.resp.ReceivedMessages[0].Message.Data) != "one" {
			t.Fatalf("waiting pull: %v %v", r.resp, r.err)
		}
		ack := r.resp.ReceivedMessages[0].AckId
		// Nacked with ModifyAckDeadline 0, it comes back at once.
		if err := sa.ModifyAckDeadline(t.Context(), &pb.ModifyAckDeadlineRequest{Subscription: subPath("pulled-sub"), AckIds: []string{ack}}); err != nil {
			t.Fatal(err)
		}
		resp, err := sa.Pull(t.Context(), &pb.PullRequest{Subscription: subPath("pulled-sub"), MaxMessages: 10})
		if err != nil || len(resp.ReceivedMessages) != 1 {
			t.Fatalf("pull after a nack: %v %v", resp, err)
		}
		if err := sa.Acknowledge(t.Context(), &pb.AcknowledgeRequest{Subscription: subPath("pulled-sub"),
			AckIds: []string{resp.ReceivedMessages[0].AckId}}); err != nil {
			t.Fatal(err)
		}
		resp, err = sa.Pull(t.Context(), &pb.PullRequest{Subscription: subPath("pulled-sub"), MaxMessages: 10, ReturnImmediately: true})
		if err != nil || len(resp.ReceivedMessages) != 0 {
			t.Errorf("pull after the ack: %v %v, want nothing", resp, err)
		}
		_, err = sa.Pull(t.Context(), &pb.PullRequest{Subscription: subPath("pulled-sub")})
		wantCode(t, "pull of 0 messages", err, codes.InvalidArgument)
	})
}
