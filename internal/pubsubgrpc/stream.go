package pubsubgrpc

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/pubsub"
)

// maxResponseBytes bounds the messages of one StreamingPullResponse; a
// batch that would be larger goes out in several. Clients accept 20 MB.
const maxResponseBytes = 16 << 20

// errClientDone is the cause of a stream's end when the client half-closes
// it: the stream then ends with OK, and Google's clients open a new one
// if they still want messages.
var errClientDone = errors.New("the client closed the stream")

// StreamingPull serves one stream. The first request names the
// subscription and sets the stream's ack deadline and flow control; later
// requests carry acks, deadline changes (0 is a nack) and, when they carry
// neither, the client's keepalive ping, which is answered at once with an
// empty response as Google's service does (the client reopens a stream
// whose pings go unanswered). Messages flow out as the broker hands them
// over. The stream ends when the client closes it, with UNAVAILABLE when
// the server stops (the client reconnects), or with the error that ended
// it (NOT_FOUND once the subscription is deleted).
func (sb subscriber) StreamingPull(stream pb.Subscriber_StreamingPullServer) error {
	ctx, done := sb.s.untilStopping(stream.Context())
	defer done()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	_, name, err := parseName(first.Subscription, subscriptions)
	if err != nil {
		return err
	}
	opts := pubsub.StreamOptions{
		MaxOutstandingMessages: int(max(first.MaxOutstandingMessages, 0)),
		MaxOutstandingBytes:    max(first.MaxOutstandingBytes, 0),
	}
	if secs := first.StreamAckDeadlineSeconds; secs != 0 {
		opts.AckDeadline = time.Duration(secs) * time.Second
		if opts.AckDeadline < pubsub.MinAckDeadline || opts.AckDeadline > pubsub.MaxAckDeadline {
			return status.Errorf(codes.InvalidArgument, "stream_ack_deadline_seconds %d: want %d to %d", secs,
				int(pubsub.MinAckDeadline/time.Second), int(pubsub.MaxAckDeadline/time.Second))
		}
	}
	sub, err := sb.s.svc.GetSubscription(ctx, name)
	if err != nil {
		return err
	}
	pulled, err := sb.s.svc.StreamingPull(ctx, name, opts)
	if err != nil {
		return err
	}
	defer pulled.Close()
	if err := sb.settle(ctx, name, first); err != nil {
		return err
	}

	w := &streamWriter{stream: stream, props: &pb.StreamingPullResponse_SubscriptionProperties{MessageOrderingEnabled: sub.Ordering}}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() { cancel(sb.readRequests(ctx, stream, name, w)) }()
	for {
		got, err := pulled.Receive(ctx)
		if err != nil {
			if cause := context.Cause(ctx); ctx.Err() != nil && cause != nil {
				if cause == errClientDone {
					return nil
				}
				return cause
			}
			return err
		}
		if len(got) == 0 {
			continue
		}
		if err := w.send(got); err != nil {
			return err
		}
	}
}

// readRequests reads the client's requests after the first until the
// client half-closes the stream (errClientDone) or something fails.
func (sb subscriber) readRequests(ctx context.Context, stream pb.Subscriber_StreamingPullServer, sub string, w *streamWriter) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errClientDone
		}
		if err != nil {
			return err
		}
		if len(req.AckIds) == 0 && len(req.ModifyDeadlineAckIds) == 0 {
			if err := w.heartbeat(); err != nil {
				return err
			}
			continue
		}
		if err := sb.settle(ctx, sub, req); err != nil {
			return err
		}
	}
}

// settle applies the acks and deadline changes a request carries. Ack
// ids the broker does not recognise are ignored, as Google's service
// does; a missing subscription ends the stream.
func (sb subscriber) settle(ctx context.Context, sub string, req *pb.StreamingPullRequest) error {
	if len(req.ModifyDeadlineSeconds) != len(req.ModifyDeadlineAckIds) {
		return status.Errorf(codes.InvalidArgument, "modify_deadline_seconds has %d values for %d modify_deadline_ack_ids",
			len(req.ModifyDeadlineSeconds), len(req.ModifyDeadlineAckIds))
	}
	if len(req.AckIds) > 0 {
		if err := sb.ignoreInvalid(sb.s.svc.Acknowledge(ctx, sub, req.AckIds)); err != nil {
			return err
		}
	}
	if len(req.ModifyDeadlineAckIds) == 0 {
		return nil
	}
	bySecs := map[int32][]string{}
	for i, id := range req.ModifyDeadlineAckIds {
		secs := req.ModifyDeadlineSeconds[i]
		bySecs[secs] = append(bySecs[secs], id)
	}
	for secs, ids := range bySecs {
		d, err := ackDeadline(secs)
		if err != nil {
			return err
		}
		if err := sb.ignoreInvalid(sb.s.svc.ModifyAckDeadline(ctx, sub, ids, d)); err != nil {
			return err
		}
	}
	return nil
}

func (sb subscriber) ignoreInvalid(err error) error {
	if errors.Is(err, duct.ErrInvalid) {
		sb.s.log.Debug("pubsub grpc: streaming pull: ignored ack ids", "err", err)
		return nil
	}
	return err
}

// streamWriter sends a stream's responses: the messages from the pull
// loop, the answers to pings from the request reader.
type streamWriter struct {
	mu     sync.Mutex // serialises Send: gRPC allows one sender at a time
	stream pb.Subscriber_StreamingPullServer
	props  *pb.StreamingPullResponse_SubscriptionProperties
}

// send sends messages in as few responses as the size bound allows.
func (w *streamWriter) send(got []pubsub.Received) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	resp := &pb.StreamingPullResponse{SubscriptionProperties: w.props}
	size := 0
	for _, r := range got {
		n := wireSize(r)
		if len(resp.ReceivedMessages) > 0 && size+n > maxResponseBytes {
			if err := w.stream.Send(resp); err != nil {
				return err
			}
			resp, size = &pb.StreamingPullResponse{SubscriptionProperties: w.props}, 0
		}
		resp.ReceivedMessages = append(resp.ReceivedMessages, receivedToPB(r))
		size += n
	}
	return w.stream.Send(resp)
}

// heartbeat answers a keepalive ping.
func (w *streamWriter) heartbeat() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stream.Send(&pb.StreamingPullResponse{SubscriptionProperties: w.props})
}
