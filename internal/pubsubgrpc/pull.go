package pubsubgrpc

import (
	"context"
	"errors"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/duct-dev/duct/internal/pubsub"
)

// maxPullWait bounds how long a Pull without return_immediately waits
// for a message before answering an empty list, as Google's service does.
const maxPullWait = 90 * time.Second

func (sb subscriber) Pull(ctx context.Context, req *pb.PullRequest) (*pb.PullResponse, error) {
	_, name, err := parseName(req.Subscription, subscriptions)
	if err != nil {
		return nil, err
	}
	if req.MaxMessages <= 0 {
		return nil, status.Errorf(codes.InvalidArgument, "max_messages %d: want 1 or more", req.MaxMessages)
	}
	n := min(int(req.MaxMessages), pubsub.MaxPullMessages)
	wait := !req.ReturnImmediately // deprecated by Google, still sent
	ctx, done := sb.s.untilStopping(ctx)
	defer done()
	if wait {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, maxPullWait, errPullWaited)
		defer cancel()
	}
	got, err := sb.s.svc.Pull(ctx, name, n, wait)
	switch cause := context.Cause(ctx); {
	case err == nil:
	case cause == errStopping:
		return nil, errStopping
	case cause == errPullWaited:
		return &pb.PullResponse{}, nil
	default:
		return nil, err
	}
	out := &pb.PullResponse{ReceivedMessages: make([]*pb.ReceivedMessage, len(got))}
	for i, r := range got {
		out.ReceivedMessages[i] = receivedToPB(r)
	}
	return out, nil
}

var errPullWaited = errors.New("no message within the pull's wait")

func (sb subscriber) Acknowledge(ctx context.Context, req *pb.AcknowledgeRequest) (*emptypb.Empty, error) {
	_, name, err := parseName(req.Subscription, subscriptions)
	if err != nil {
		return nil, err
	}
	if len(req.AckIds) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no ack_ids")
	}
	if err := sb.s.svc.Acknowledge(ctx, name, req.AckIds); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func (sb subscriber) ModifyAckDeadline(ctx context.Context, req *pb.ModifyAckDeadlineRequest) (*emptypb.Empty, error) {
	_, name, err := parseName(req.Subscription, subscriptions)
	if err != nil {
		return nil, err
	}
	if len(req.AckIds) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no ack_ids")
	}
	d, err := ackDeadline(req.AckDeadlineSeconds)
	if err != nil {
		return nil, err
	}
	if err := sb.s.svc.ModifyAckDeadline(ctx, name, req.AckIds, d); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// ackDeadline reads a lease extension: 0 (a nack) to 600 seconds.
func ackDeadline(secs int32) (time.Duration, error) {
	if secs < 0 || time.Duration(secs)*time.Second > pubsub.MaxAckDeadline {
		return 0, status.Errorf(codes.InvalidArgument, "ack deadline %d s: want 0 to %d", secs, int(pubsub.MaxAckDeadline/time.Second))
	}
	return time.Duration(secs) * time.Second, nil
}

func (sb subscriber) Seek(ctx context.Context, req *pb.SeekRequest) (*pb.SeekResponse, error) {
	_, name, err := parseName(req.Subscription, subscriptions)
	if err != nil {
		return nil, err
	}
	switch target := req.Target.(type) {
	case *pb.SeekRequest_Time:
		if err := target.Time.CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "time: %v", err)
		}
		if err := sb.s.svc.Seek(ctx, name, target.Time.AsTime()); err != nil {
			return nil, err
		}
		return &pb.SeekResponse{}, nil
	case *pb.SeekRequest_Snapshot:
		return nil, unsupported(noSnapshots)
	}
	return nil, status.Error(codes.InvalidArgument, "missing target: seek to a time")
}
