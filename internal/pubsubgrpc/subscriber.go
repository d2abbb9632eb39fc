package pubsubgrpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/pubsub"
)

// CreateSubscription creates a subscription; one without a name gets a
// random one in the topic's project, as Google does.
func (sb subscriber) CreateSubscription(ctx context.Context, s *pb.Subscription) (*pb.Subscription, error) {
	if s.Name == "" {
		project, _, err := parseName(s.Topic, topics)
		if err != nil {
			return nil, err
		}
		s.Name = fullName(project, subscriptions, "sub-"+randomHex(8))
	}
	project, sub, err := subFromPB(s)
	if err != nil {
		return nil, err
	}
	created, err := sb.s.svc.CreateSubscription(ctx, sub)
	if errors.Is(err, duct.ErrConflict) {
		return nil, status.Errorf(codes.AlreadyExists, "subscription %s already exists", s.Name)
	}
	if err != nil {
		return nil, err
	}
	return sb.describe(ctx, project, created)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// describe answers a subscription with its topic's retention, or the
// name Google gives a deleted topic.
func (sb subscriber) describe(ctx context.Context, project string, s pubsub.Subscription) (*pb.Subscription, error) {
	t, err := sb.s.svc.GetTopic(ctx, s.Topic)
	switch {
	case errors.Is(err, duct.ErrNotFound):
		return subToPB(project, s, nil), nil
	case err != nil:
		return nil, err
	}
	return subToPB(project, s, &t), nil
}

func (sb subscriber) GetSubscription(ctx context.Context, req *pb.GetSubscriptionRequest) (*pb.Subscription, error) {
	project, name, err := parseName(req.Subscription, subscriptions)
	if err != nil {
		return nil, err
	}
	s, err := sb.s.svc.GetSubscription(ctx, name)
	if err != nil {
		return nil, err
	}
	return sb.describe(ctx, project, s)
}

// updatable are the subscription fields UpdateSubscription may change.
// The topic, the filter and ordering are fixed at creation, as with
// Google.
var updatable = map[string]func(cur *pubsub.Subscription, want pubsub.Subscription){
	"ack_deadline_seconds":       func(c *pubsub.Subscription, w pubsub.Subscription) { c.AckDeadline = w.AckDeadline },
	"labels":                     func(c *pubsub.Subscription, w pubsub.Subscription) { c.Labels = w.Labels },
	"message_retention_duration": func(c *pubsub.Subscription, w pubsub.Subscription) { c.Retention = w.Retention },
	"retry_policy":               func(c *pubsub.Subscription, w pubsub.Subscription) { c.Retry = w.Retry },
	"dead_letter_policy":         func(c *pubsub.Subscription, w pubsub.Subscription) { c.DeadLetter = w.DeadLetter },
	"push_config":                func(c *pubsub.Subscription, w pubsub.Subscription) { c.Push = w.Push },
	// Accepted and without effect: Duct keeps messages for their
	// retention whether acknowledged or not, and never expires idle
	// subscriptions.
	"retain_acked_messages": func(*pubsub.Subscription, pubsub.Subscription) {},
	"expiration_policy":     func(*pubsub.Subscription, pubsub.Subscription) {},
}

func (sb subscriber) UpdateSubscription(ctx context.Context, req *pb.UpdateSubscriptionRequest) (*pb.Subscription, error) {
	if req.Subscription == nil {
		return nil, status.Error(codes.InvalidArgument, "missing subscription")
	}
	if len(req.GetUpdateMask().GetPaths()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "missing update_mask: name the fields to change")
	}
	project, name, err := parseName(req.Subscription.Name, subscriptions)
	if err != nil {
		return nil, err
	}
	cur, err := sb.s.svc.GetSubscription(ctx, name)
	if err != nil {
		return nil, err
	}
	// The request need not repeat the topic: read it with the current one.
	in := req.Subscription
	if in.Topic == "" {
		in.Topic = fullName(project, topics, cur.Topic)
		if cur.Topic == pubsub.DeletedTopic {
			in.Topic = pubsub.DeletedTopic
		}
	}
	_, want, err := subFromPB(in)
	if err != nil {
		return nil, err
	}
	for _, f := range req.UpdateMask.Paths {
		set, ok := updatable[f]
		if !ok {
			return nil, status.Errorf(codes.InvalidArgument, "update_mask: field %q cannot be updated", f)
		}
		set(&cur, want)
	}
	updated, err := sb.s.svc.UpdateSubscription(ctx, cur)
	if err != nil {
		return nil, err
	}
	return sb.describe(ctx, project, updated)
}

func (sb subscriber) ListSubscriptions(ctx context.Context, req *pb.ListSubscriptionsRequest) (*pb.ListSubscriptionsResponse, error) {
	project, err := parseProject(req.Project)
	if err != nil {
		return nil, err
	}
	subs, err := sb.s.svc.ListSubscriptions(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := sb.s.svc.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	topicsByName := make(map[string]*pubsub.Topic, len(ts))
	for i := range ts {
		topicsByName[ts[i].Name] = &ts[i]
	}
	byName := make(map[string]pubsub.Subscription, len(subs))
	names := make([]string, 0, len(subs))
	for _, s := range subs {
		byName[s.Name] = s
		names = append(names, s.Name)
	}
	names, next, err := page(names, req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	out := &pb.ListSubscriptionsResponse{NextPageToken: next}
	for _, n := range names {
		s := byName[n]
		out.Subscriptions = append(out.Subscriptions, subToPB(project, s, topicsByName[s.Topic]))
	}
	return out, nil
}

func (sb subscriber) DeleteSubscription(ctx context.Context, req *pb.DeleteSubscriptionRequest) (*emptypb.Empty, error) {
	_, name, err := parseName(req.Subscription, subscriptions)
	if err != nil {
		return nil, err
	}
	if err := sb.s.svc.DeleteSubscription(ctx, name); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// ModifyPushConfig makes a subscription push to an endpoint, or pull
// when the endpoint is empty.
func (sb subscriber) ModifyPushConfig(ctx context.Context, req *pb.ModifyPushConfigRequest) (*emptypb.Empty, error) {
	_, name, err := parseName(req.Subscription, subscriptions)
	if err != nil {
		return nil, err
	}
	push, err := pushFromPB(req.PushConfig)
	if err != nil {
		return nil, err
	}
	cur, err := sb.s.svc.GetSubscription(ctx, name)
	if err != nil {
		return nil, err
	}
	cur.Push = push
	if _, err := sb.s.svc.UpdateSubscription(ctx, cur); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// Snapshots: Duct keeps none. Seek to a time covers replay.

const noSnapshots = "snapshots (seek to a time instead)"

func (sb subscriber) GetSnapshot(context.Context, *pb.GetSnapshotRequest) (*pb.Snapshot, error) {
	return nil, unsupported(noSnapshots)
}

func (sb subscriber) ListSnapshots(_ context.Context, req *pb.ListSnapshotsRequest) (*pb.ListSnapshotsResponse, error) {
	if _, err := parseProject(req.Project); err != nil {
		return nil, err
	}
	return &pb.ListSnapshotsResponse{}, nil
}

func (sb subscriber) CreateSnapshot(context.Context, *pb.CreateSnapshotRequest) (*pb.Snapshot, error) {
	return nil, unsupported(noSnapshots)
}

func (sb subscriber) UpdateSnapshot(context.Context, *pb.UpdateSnapshotRequest) (*pb.Snapshot, error) {
	return nil, unsupported(noSnapshots)
}

func (sb subscriber) DeleteSnapshot(context.Context, *pb.DeleteSnapshotRequest) (*emptypb.Empty, error) {
	return nil, unsupported(noSnapshots)
}
