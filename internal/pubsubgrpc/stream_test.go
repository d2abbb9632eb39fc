package pubsubgrpc_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
)

// stream is a raw StreamingPull stream whose responses a goroutine reads
// into a channel, so that tests can wait for them with a timeout.
type stream struct {
	pb.Subscriber_StreamingPullClient
	resps chan *pb.StreamingPullResponse
	end   chan error // the error that ended Recv (io.EOF for OK)
}

func openStream(t *testing.T, e env, first *pb.StreamingPullRequest) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	spc, err := e.c.SubscriptionAdminClient.StreamingPull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := spc.Send(first); err != nil {
		t.Fatal(err)
	}
	s := &stream{spc, make(chan *pb.StreamingPullResponse, 100), make(chan error, 1)}
	go func() {
		for {
			r, err := spc.Recv()
			if err != nil {
				s.end <- err
				return
			}
			s.resps <- r
		}
	}()
	return s
}

// next waits up to timeout for a response; nil when none came.
func (s *stream) next(t *testing.T, timeout time.Duration) *pb.StreamingPullResponse {
	t.Helper()
	select {
	case r := <-s.resps:
		return r
	case err := <-s.end:
		t.Fatalf("the stream ended: %v", err)
	case <-time.After(timeout):
	}
	return nil
}

// messages collects n messages, or fails after timeout.
func (s *stream) messages(t *testing.T, n int, timeout time.Duration) []*pb.ReceivedMessage {
	t.Helper()
	var got []*pb.ReceivedMessage
	deadline := time.Now().Add(timeout)
	for len(got) < n {
		r := s.next(t, time.Until(deadline))
		if r == nil {
			t.Fatalf("got %d messages of %d within %s", len(got), n, timeout)
		}
		got = append(got, r.ReceivedMessages...)
	}
	return got
}

func ackIDs(ms []*pb.ReceivedMessage) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.AckId
	}
	return ids
}

// TestStreamingPullProtocol checks the stream as the protocol has it:
// keepalive pings answered, flow control, acks and nacks in the request
// stream, the stream's own ack deadline, a clean end on half-close, and
// UNAVAILABLE when the server stops.
func TestStreamingPullProtocol(t *testing.T) {
	e := start(t)
	publish := func(t *testing.T, topic string, n int) {
		t.Helper()
		req := &pb.PublishRequest{Topic: topicPath(topic)}
		for i := range n {
			req.Messages = append(req.Messages, &pb.PubsubMessage{Data: []byte(strconv.Itoa(i))})
		}
		if _, err := e.c.TopicAdminClient.Publish(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("KeepalivePing", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "quiet")
		e.sub(t, "quiet-sub", "quiet", &pb.Subscription{EnableMessageOrdering: true})
		s := openStream(t, e, &pb.StreamingPullRequest{Subscription: subPath("quiet-sub"), StreamAckDeadlineSeconds: 60, ProtocolVersion: 1})
		if r := s.next(t, 300*time.Millisecond); r != nil {
			t.Fatalf("a response before any message or ping: %v", r)
		}
		// Google's client sends an empty request every 30 s and reopens a
		// stream that has not answered within 15 s.
		if err := s.Send(&pb.StreamingPullRequest{}); err != nil {
			t.Fatal(err)
		}
		r := s.next(t, 2*time.Second)
		if r == nil || len(r.ReceivedMessages) != 0 || !r.SubscriptionProperties.GetMessageOrderingEnabled() {
			t.Fatalf("answer to a ping: %v, want an empty response with the subscription's properties", r)
		}
		// A half-close ends the stream with OK.
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-s.end:
			if !errors.Is(err, io.EOF) {
				t.Errorf("after CloseSend the stream ended with %v, want OK (io.EOF)", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("the stream did not end after CloseSend")
		}
	})

	t.Run("FlowControlAndAcks", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "flow")
		e.sub(t, "flow-sub", "flow", nil)
		publish(t, "flow", 5)
		s := openStream(t, e, &pb.StreamingPullRequest{Subscription: subPath("flow-sub"), StreamAckDeadlineSeconds: 60, MaxOutstandingMessages: 2})
		first := s.messages(t, 2, 10*time.Second)
		if len(first) != 2 {
			t.Fatalf("got %d messages with 2 outstanding allowed", len(first))
		}
		if r := s.next(t, 500*time.Millisecond); r != nil && len(r.ReceivedMessages) > 0 {
			t.Fatalf("got more than 2 outstanding messages: %v", r)
		}
		// Ack one and nack the other in the request stream: two more
		// come, one of them the nacked message again.
		if err := s.Send(&pb.StreamingPullRequest{AckIds: []string{first[0].AckId},
			ModifyDeadlineAckIds: []string{first[1].AckId}, ModifyDeadlineSeconds: []int32{0}}); err != nil {
			t.Fatal(err)
		}
		second := s.messages(t, 2, 10*time.Second)
		seen := map[string]int{}
		for _, m := range append(first, second...) {
			seen[string(m.Message.Data)]++
		}
		if seen[string(first[1].Message.Data)] != 2 || seen[string(first[0].Message.Data)] != 1 {
			t.Errorf("after an ack and a nack: %v", seen)
		}
		if err := s.Send(&pb.StreamingPullRequest{AckIds: ackIDs(second)}); err != nil {
			t.Fatal(err)
		}
		rest := s.messages(t, 2, 10*time.Second)
		if err := s.Send(&pb.StreamingPullRequest{AckIds: ackIDs(rest)}); err != nil {
			t.Fatal(err)
		}
		for _, m := range rest {
			seen[string(m.Message.Data)]++
		}
		if len(seen) != 5 {
			t.Errorf("messages seen: %v, want all 5", seen)
		}
		// Unequal deadline lists end the stream.
		if err := s.Send(&pb.StreamingPullRequest{ModifyDeadlineAckIds: []string{"a", "b"}, ModifyDeadlineSeconds: []int32{10}}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-s.end:
			wantCode(t, "unequal modify_deadline lists", err, codes.InvalidArgument)
		case <-time.After(5 * time.Second):
			t.Error("the stream went on after an invalid request")
		}
	})

	t.Run("StreamAckDeadline", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "leased")
		// The subscription's deadline is 10 minutes; the stream's, 10 s.
		e.sub(t, "leased-sub", "leased", &pb.Subscription{AckDeadlineSeconds: 600})
		publish(t, "leased", 1)
		s := openStream(t, e, &pb.StreamingPullRequest{Subscription: subPath("leased-sub"), StreamAckDeadlineSeconds: 10})
		m := s.messages(t, 1, 10*time.Second)[0]
		start := time.Now()
		again := s.messages(t, 1, 20*time.Second)[0]
		if took := time.Since(start); again.Message.MessageId != m.Message.MessageId || took < 8*time.Second {
			t.Errorf("redelivered %s after %s, want %s after the stream's 10 s", again.Message.MessageId, took, m.Message.MessageId)
		}
	})

	t.Run("DeletedSubscription", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "brief")
		e.sub(t, "brief-sub", "brief", nil)
		s := openStream(t, e, &pb.StreamingPullRequest{Subscription: subPath("brief-sub"), StreamAckDeadlineSeconds: 10})
		time.Sleep(100 * time.Millisecond)
		if err := e.c.SubscriptionAdminClient.DeleteSubscription(t.Context(), &pb.DeleteSubscriptionRequest{Subscription: subPath("brief-sub")}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-s.end:
			wantCode(t, "a stream whose subscription was deleted", err, codes.NotFound)
		case <-time.After(10 * time.Second):
			t.Error("the stream went on after its subscription was deleted")
		}
	})

	t.Run("BadFirstRequest", func(t *testing.T) {
		t.Parallel()
		e.topic(t, "strict")
		e.sub(t, "strict-sub", "strict", nil)
		for what, first := range map[string]*pb.StreamingPullRequest{
			"no subscription":    {StreamAckDeadlineSeconds: 10},
			"a deadline of 5 s":  {Subscription: subPath("strict-sub"), StreamAckDeadlineSeconds: 5},
			"a deadline of 601s": {Subscription: subPath("strict-sub"), StreamAckDeadlineSeconds: 601},
		} {
			s := openStream(t, e, first)
			select {
			case err := <-s.end:
				wantCode(t, what, err, codes.InvalidArgument)
			case <-time.After(5 * time.Second):
				t.Errorf("%s: the stream did not end", what)
			}
		}
	})
}

// TestShutdownEndsStreams: a server stopping ends its streams with
// UNAVAILABLE, which Google's clients retry, and does not wait for them.
func TestShutdownEndsStreams(t *testing.T) {
	e := start(t)
	e.topic(t, "t-stop")
	e.sub(t, "t-stop-sub", "t-stop", nil)
	s := openStream(t, e, &pb.StreamingPullRequest{Subscription: subPath("t-stop-sub"), StreamAckDeadlineSeconds: 10})
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	e.s.Stop()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("shutdown took %s with a stream open", took)
	}
	select {
	case err := <-s.end:
		wantCode(t, "a stream at shutdown", err, codes.Unavailable)
	case <-time.After(5 * time.Second):
		t.Error("the stream did not end at shutdown")
	}
}
