package pubsubgrpc

import (
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/duct-dev/duct/internal/pubsub"
)

// unsupported answers a request for a feature of Google's service that
// Duct does not have.
func unsupported(what string) error {
	return status.Errorf(codes.Unimplemented, "Duct's Pub/Sub does not support %s", what)
}

func topicToPB(project string, t pubsub.Topic) *pb.Topic {
	out := &pb.Topic{Name: fullName(project, topics, t.Name), Labels: t.Labels, State: pb.Topic_ACTIVE}
	if t.Retention > 0 {
		out.MessageRetentionDuration = durationpb.New(t.Retention)
	}
	return out
}

// topicFromPB reads what Duct keeps of a topic. Storage regions and
// encryption keys are a cloud's concern and are ignored.
func topicFromPB(t *pb.Topic) (project string, out pubsub.Topic, err error) {
	project, name, err := parseName(t.GetName(), topics)
	if err != nil {
		return "", out, err
	}
	switch {
	case t.SchemaSettings != nil:
		return "", out, unsupported("schemas")
	case t.IngestionDataSourceSettings != nil:
		return "", out, unsupported("ingestion from other services")
	case len(t.MessageTransforms) > 0:
		return "", out, unsupported("message transforms")
	}
	retention, err := duration("message_retention_duration", t.MessageRetentionDuration)
	if err != nil {
		return "", out, err
	}
	return project, pubsub.Topic{Name: name, Labels: t.Labels, Retention: retention}, nil
}

func duration(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, status.Errorf(codes.InvalidArgument, "%s: %v", field, err)
	}
	return d.AsDuration(), nil
}

// subFromPB reads what Duct keeps of a subscription.
func subFromPB(s *pb.Subscription) (project string, out pubsub.Subscription, err error) {
	project, name, err := parseName(s.GetName(), subscriptions)
	if err != nil {
		return "", out, err
	}
	topic := pubsub.DeletedTopic // as read back from a detached subscription
	if s.GetTopic() != pubsub.DeletedTopic {
		if _, topic, err = parseName(s.GetTopic(), topics); err != nil {
			return "", out, err
		}
	}
	switch {
	case s.BigqueryConfig != nil || s.CloudStorageConfig != nil || s.BigtableConfig != nil:
		return "", out, unsupported("export subscriptions (BigQuery, Cloud Storage, Bigtable): use pull or push")
	case s.EnableExactlyOnceDelivery:
		return "", out, unsupported("exactly-once delivery: it delivers at least once")
	case len(s.MessageTransforms) > 0:
		return "", out, unsupported("message transforms")
	}
	out = pubsub.Subscription{
		Name: name, Topic: topic, Filter: s.Filter, Ordering: s.EnableMessageOrdering, Labels: s.Labels,
		AckDeadline: time.Duration(s.AckDeadlineSeconds) * time.Second,
	}
	if out.Retention, err = duration("message_retention_duration", s.MessageRetentionDuration); err != nil {
		return "", out, err
	}
	if out.Retry, err = retryFromPB(s.RetryPolicy); err != nil {
		return "", out, err
	}
	if out.DeadLetter, err = deadLetterFromPB(s.DeadLetterPolicy); err != nil {
		return "", out, err
	}
	if out.Push, err = pushFromPB(s.PushConfig); err != nil {
		return "", out, err
	}
	return project, out, nil
}

// retryFromPB reads a retry policy; a bound left out gets Google's
// default.
func retryFromPB(rp *pb.RetryPolicy) (*pubsub.RetryPolicy, error) {
	if rp == nil {
		return nil, nil
	}
	out := &pubsub.RetryPolicy{MinBackoff: pubsub.DefaultMinBackoff, MaxBackoff: pubsub.DefaultMaxBackoff}
	var err error
	if rp.MinimumBackoff != nil {
		if out.MinBackoff, err = duration("retry_policy.minimum_backoff", rp.MinimumBackoff); err != nil {
			return nil, err
		}
	}
	if rp.MaximumBackoff != nil {
		if out.MaxBackoff, err = duration("retry_policy.maximum_backoff", rp.MaximumBackoff); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deadLetterFromPB reads a dead-letter policy; without a topic there is
// none, and attempts left out are Google's default of 5.
func deadLetterFromPB(dl *pb.DeadLetterPolicy) (*pubsub.DeadLetterPolicy, error) {
	if dl.GetDeadLetterTopic() == "" {
		return nil, nil
	}
	_, topic, err := parseName(dl.DeadLetterTopic, topics)
	if err != nil {
		return nil, err
	}
	attempts := int(dl.MaxDeliveryAttempts)
	if attempts == 0 {
		attempts = pubsub.DefaultDeadLetter
	}
	return &pubsub.DeadLetterPolicy{Topic: topic, MaxAttempts: attempts}, nil
}

// pushFromPB reads a push configuration; without an endpoint the
// subscription is a pull one.
func pushFromPB(pc *pb.PushConfig) (*pubsub.PushConfig, error) {
	switch {
	case pc.GetPushEndpoint() == "":
		return nil, nil
	case pc.GetOidcToken() != nil:
		return nil, unsupported("authenticated push (OIDC tokens)")
	case pc.GetNoWrapper() != nil:
		return nil, unsupported("push without the JSON wrapper")
	}
	return &pubsub.PushConfig{Endpoint: pc.PushEndpoint, Attributes: pc.Attributes}, nil
}

// subToPB describes a subscription. topic is its topic, nil when the
// topic has been deleted (the subscription then names
// pubsub.DeletedTopic, as Google's do).
func subToPB(project string, s pubsub.Subscription, topic *pubsub.Topic) *pb.Subscription {
	out := &pb.Subscription{
		Name: fullName(project, subscriptions, s.Name), Topic: pubsub.DeletedTopic,
		AckDeadlineSeconds: int32(orDefault(s.AckDeadline, pubsub.DefaultAckDeadline) / time.Second),
		Labels:             s.Labels, EnableMessageOrdering: s.Ordering, Filter: s.Filter,
		PushConfig: &pb.PushConfig{}, State: pb.Subscription_ACTIVE,
	}
	if topic != nil {
		out.Topic = fullName(project, topics, s.Topic)
		tr := orDefault(topic.Retention, pubsub.DefaultRetention)
		out.TopicMessageRetentionDuration = durationpb.New(tr)
		out.MessageRetentionDuration = durationpb.New(orDefault(s.Retention, tr))
	} else if s.Retention > 0 {
		out.MessageRetentionDuration = durationpb.New(s.Retention)
	}
	if r := s.Retry; r != nil {
		out.RetryPolicy = &pb.RetryPolicy{MinimumBackoff: durationpb.New(r.MinBackoff), MaximumBackoff: durationpb.New(r.MaxBackoff)}
	}
	if dl := s.DeadLetter; dl != nil {
		out.DeadLetterPolicy = &pb.DeadLetterPolicy{DeadLetterTopic: fullName(project, topics, dl.Topic), MaxDeliveryAttempts: int32(dl.MaxAttempts)}
	}
	if p := s.Push; p != nil {
		out.PushConfig = &pb.PushConfig{PushEndpoint: p.Endpoint, Attributes: p.Attributes}
	}
	return out
}

// orDefault is d, or def when d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func messagesFromPB(ms []*pb.PubsubMessage) []pubsub.Message {
	out := make([]pubsub.Message, len(ms))
	for i, m := range ms {
		out[i] = pubsub.Message{Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey}
	}
	return out
}

func receivedToPB(r pubsub.Received) *pb.ReceivedMessage {
	m := r.Message
	return &pb.ReceivedMessage{
		AckId: r.AckID,
		Message: &pb.PubsubMessage{
			Data: m.Data, Attributes: m.Attributes, MessageId: m.ID,
			PublishTime: timestamppb.New(m.PublishTime), OrderingKey: m.OrderingKey,
		},
		DeliveryAttempt: int32(r.DeliveryAttempt),
	}
}

// wireSize estimates the encoded size of a received message, to keep
// responses under the clients' limit.
func wireSize(r pubsub.Received) int {
	n := len(r.AckID) + len(r.Message.ID) + len(r.Message.Data) + len(r.Message.OrderingKey) + 64
	for k, v := range r.Message.Attributes {
		n += len(k) + len(v) + 8
	}
	return n
}
