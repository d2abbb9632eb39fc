package pubsubgrpc

import (
	"context"
	"errors"
	"fmt"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/pubsub"
)

func (p publisher) CreateTopic(ctx context.Context, t *pb.Topic) (*pb.Topic, error) {
	project, topic, err := topicFromPB(t)
	if err != nil {
		return nil, err
	}
	created, err := p.s.svc.CreateTopic(ctx, topic)
	if errors.Is(err, duct.ErrConflict) {
		return nil, status.Errorf(codes.AlreadyExists, "topic %s already exists", t.Name)
	}
	if err != nil {
		return nil, err
	}
	return topicToPB(project, created), nil
}

// UpdateTopic changes the fields the mask names: labels and retention.
func (p publisher) UpdateTopic(ctx context.Context, req *pb.UpdateTopicRequest) (*pb.Topic, error) {
	if req.Topic == nil {
		return nil, status.Error(codes.InvalidArgument, "missing topic")
	}
	if len(req.GetUpdateMask().GetPaths()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "missing update_mask: name the fields to change")
	}
	project, want, err := topicFromPB(req.Topic)
	if err != nil {
		return nil, err
	}
	cur, err := p.s.svc.GetTopic(ctx, want.Name)
	if err != nil {
		return nil, err
	}
	for _, f := range req.UpdateMask.Paths {
		switch f {
		case "labels":
			cur.Labels = want.Labels
		case "message_retention_duration":
			cur.Retention = want.Retention
		case "message_storage_policy", "kms_key_name":
			// A cloud's concern: accepted, as at creation.
		default:
			return nil, status.Errorf(codes.InvalidArgument, "update_mask: field %q cannot be updated (Duct updates labels and message_retention_duration)", f)
		}
	}
	updated, err := p.s.svc.UpdateTopic(ctx, cur)
	if err != nil {
		return nil, err
	}
	return topicToPB(project, updated), nil
}

func (p publisher) Publish(ctx context.Context, req *pb.PublishRequest) (*pb.PublishResponse, error) {
	_, topic, err := parseName(req.Topic, topics)
	if err != nil {
		return nil, err
	}
	if len(req.Messages) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no messages to publish")
	}
	ids, err := p.s.svc.Publish(ctx, topic, messagesFromPB(req.Messages))
	if err != nil {
		return nil, err
	}
	return &pb.PublishResponse{MessageIds: ids}, nil
}

func (p publisher) GetTopic(ctx context.Context, req *pb.GetTopicRequest) (*pb.Topic, error) {
	project, name, err := parseName(req.Topic, topics)
	if err != nil {
		return nil, err
	}
	t, err := p.s.svc.GetTopic(ctx, name)
	if err != nil {
		return nil, err
	}
	return topicToPB(project, t), nil
}

func (p publisher) ListTopics(ctx context.Context, req *pb.ListTopicsRequest) (*pb.ListTopicsResponse, error) {
	project, err := parseProject(req.Project)
	if err != nil {
		return nil, err
	}
	ts, err := p.s.svc.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]pubsub.Topic, len(ts))
	names := make([]string, 0, len(ts))
	for _, t := range ts {
		byName[t.Name] = t
		names = append(names, t.Name)
	}
	names, next, err := page(names, req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	out := &pb.ListTopicsResponse{NextPageToken: next}
	for _, n := range names {
		out.Topics = append(out.Topics, topicToPB(project, byName[n]))
	}
	return out, nil
}

func (p publisher) ListTopicSubscriptions(ctx context.Context, req *pb.ListTopicSubscriptionsRequest) (*pb.ListTopicSubscriptionsResponse, error) {
	project, name, err := parseName(req.Topic, topics)
	if err != nil {
		return nil, err
	}
	subs, err := p.s.svc.ListTopicSubscriptions(ctx, name)
	if err != nil {
		return nil, err
	}
	subs, next, err := page(subs, req.PageSize, req.PageToken)
	if err != nil {
		return nil, err
	}
	out := &pb.ListTopicSubscriptionsResponse{NextPageToken: next, Subscriptions: make([]string, len(subs))}
	for i, s := range subs {
		out.Subscriptions[i] = fullName(project, subscriptions, s)
	}
	return out, nil
}

// ListTopicSnapshots answers an empty list for a topic that exists: Duct
// keeps no snapshots.
func (p publisher) ListTopicSnapshots(ctx context.Context, req *pb.ListTopicSnapshotsRequest) (*pb.ListTopicSnapshotsResponse, error) {
	_, name, err := parseName(req.Topic, topics)
	if err != nil {
		return nil, err
	}
	if _, err := p.s.svc.GetTopic(ctx, name); err != nil {
		return nil, err
	}
	return &pb.ListTopicSnapshotsResponse{}, nil
}

func (p publisher) DeleteTopic(ctx context.Context, req *pb.DeleteTopicRequest) (*emptypb.Empty, error) {
	_, name, err := parseName(req.Topic, topics)
	if err != nil {
		return nil, err
	}
	if err := p.s.svc.DeleteTopic(ctx, name); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func (p publisher) DetachSubscription(ctx context.Context, req *pb.DetachSubscriptionRequest) (*pb.DetachSubscriptionResponse, error) {
	if _, _, err := parseName(req.Subscription, subscriptions); err != nil {
		return nil, err
	}
	return nil, unsupported(fmt.Sprintf("detaching subscriptions: delete %s instead", req.Subscription))
}
