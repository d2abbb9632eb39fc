package pubsubgrpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/ducttest"
)

// bearer sends a Duct API token with every call, as an application does
// with the server's --pubsub-auth.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// TestTokens: with PubSubAuth the port wants a token whose role allows
// the call, as the REST API does.
func TestTokens(t *testing.T) {
	s := ducttest.Start(t, ducttest.WithPubSub, func(c *daemon.Config) { c.PubSubAuth = true })
	client := func(token string) *gpubsub.Client {
		opts := []option.ClientOption{option.WithEndpoint(s.PubSubAddr()), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
		if token != "" {
			opts = append(opts, option.WithGRPCDialOption(grpc.WithPerRPCCredentials(bearer(token))))
		}
		c, err := gpubsub.NewClient(context.Background(), project, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	token := func(role string) string {
		r := s.Do("POST", "/api/v1/tokens", strings.NewReader(fmt.Sprintf(`{"name": "%s-token", "role": %q}`, role, role)))
		var nt struct{ Token string }
		if r.Status != 201 || json.Unmarshal([]byte(r.Body), &nt) != nil {
			t.Fatalf("create a %s token: %d %s", role, r.Status, r.Body)
		}
		return nt.Token
	}
	admin, invoke, read := client(ducttest.AdminToken), client(token("invoke")), client(token("read"))

	_, err := client("").TopicAdminClient.GetTopic(t.Context(), &pb.GetTopicRequest{Topic: topicPath("jobs")})
	wantCode(t, "a call without a token", err, codes.Unauthenticated)
	_, err = client("duct_000000000000_bad").TopicAdminClient.GetTopic(t.Context(), &pb.GetTopicRequest{Topic: topicPath("jobs")})
	wantCode(t, "a call with a bad token", err, codes.Unauthenticated)
	_, err = invoke.TopicAdminClient.CreateTopic(t.Context(), &pb.Topic{Name: topicPath("jobs")})
	wantCode(t, "an invoke token creating a topic", err, codes.PermissionDenied)
	if _, err := admin.TopicAdminClient.CreateTopic(t.Context(), &pb.Topic{Name: topicPath("jobs")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SubscriptionAdminClient.CreateSubscription(t.Context(), &pb.Subscription{Name: subPath("jobs-sub"), Topic: topicPath("jobs")}); err != nil {
		t.Fatal(err)
	}
	if _, err := read.TopicAdminClient.GetTopic(t.Context(), &pb.GetTopicRequest{Topic: topicPath("jobs")}); err != nil {
		t.Errorf("a read token getting a topic: %v", err)
	}
	_, err = read.TopicAdminClient.Publish(t.Context(), &pb.PublishRequest{Topic: topicPath("jobs"), Messages: []*pb.PubsubMessage{{Data: []byte("x")}}})
	wantCode(t, "a read token publishing", err, codes.PermissionDenied)
	p := invoke.Publisher("jobs")
	defer p.Stop()
	if _, err := p.Publish(t.Context(), &gpubsub.Message{Data: []byte("work")}).Get(t.Context()); err != nil {
		t.Fatalf("an invoke token publishing: %v", err)
	}
	if got := receive(t, invoke.Subscriber("jobs-sub"), 1, 20*time.Second, nil); len(got) != 1 || string(got[0].Data) != "work" {
		t.Errorf("an invoke token receiving: %v", got)
	}
	_, err = invoke.TopicAdminClient.GetTopic(t.Context(), &pb.GetTopicRequest{Topic: topicPath("jobs")})
	wantCode(t, "an invoke token reading a topic", err, codes.PermissionDenied)
}
