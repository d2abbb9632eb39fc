package api_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct/internal/api"
	"github.com/duct-dev/duct/internal/ducttest"
)

// call sends a JSON body (a string, or a value to encode) with token
// (ducttest's admin token when empty) and returns the answer.
func call(t *testing.T, s *ducttest.Server, token, method, path string, body any) ducttest.Response {
	t.Helper()
	var text string
	switch b := body.(type) {
	case nil:
	case string:
		text = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		text = string(j)
	}
	if token == "" {
		token = ducttest.AdminToken
	}
	var r ducttest.Response
	if text == "" {
		r = s.DoToken(token, method, path, nil)
	} else {
		r = s.DoToken(token, method, path, strings.NewReader(text), "Content-Type", "application/json")
	}
	return r
}

func want(t *testing.T, what string, r ducttest.Response, status int, contains ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: %d %s, want %d", what, r.Status, r.Body, status)
		return
	}
	for _, c := range contains {
		if !strings.Contains(r.Body, c) {
			t.Errorf("%s: %s, want it to hold %q", what, r.Body, c)
		}
	}
}

func decode[T any](t *testing.T, r ducttest.Response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
	return v
}

// TestPubSubREST follows a topic and a subscription through the REST API:
// create, publish, pull, nack, ack, seek, delete; with bad input at each
// step answered 400, 404 or 409 and changing nothing.
func TestPubSubREST(t *testing.T) {
	s := ducttest.Start(t)

	want(t, "create topic", call(t, s, "", "PUT", "/api/v1/topics/orders", `{"labels": {"team": "shop"}, "messageRetentionDuration": "24h"}`),
		http.StatusCreated, `"name": "orders"`, `"messageRetentionDuration": "24h0m0s"`, `"team": "shop"`)
	want(t, "create it again", call(t, s, "", "PUT", "/api/v1/topics/orders", nil), http.StatusConflict)
	want(t, "create without a body", call(t, s, "", "PUT", "/api/v1/topics/refunds", nil), http.StatusCreated)
	for _, bad := range []struct{ path, body, why string }{
		{"/api/v1/topics/1xyz", "", "must start with a letter"},
		{"/api/v1/topics/ab", "", "3 to 255"},
		{"/api/v1/topics/goog-x", "", "reserved"},
		{"/api/v1/topics/sales", `{"name": "other"}`, "the body names topic"},
		{"/api/v1/topics/sales", `{"retention": "1h"}`, "unknown field"},
		{"/api/v1/topics/sales", `{"messageRetentionDuration": "1m"}`, "retention"},
		{"/api/v1/topics/sales", `{"labels": {"Bad": "x"}}`, "labels"},
	} {
		want(t, "create "+bad.path+" "+bad.body, call(t, s, "", "PUT", bad.path, bad.body), http.StatusBadRequest, bad.why)
	}
	topics := decode[[]api.Topic](t, call(t, s, "", "GET", "/api/v1/topics", nil))
	if len(topics) != 2 || topics[0].Name != "orders" || topics[1].Name != "refunds" || topics[0].CreatedAt.IsZero() {
		t.Errorf("topics: %+v", topics)
	}

	want(t, "subscribe", call(t, s, "", "PUT", "/api/v1/subscriptions/shipping",
		`{"topic": "orders", "ackDeadlineSeconds": 30, "retryPolicy": {"minimumBackoff": "1s"}}`),
		http.StatusCreated, `"ackDeadlineSeconds": 30`, `"minimumBackoff": "1s"`, `"maximumBackoff": "10m0s"`)
	want(t, "subscribe with a filter", call(t, s, "", "PUT", "/api/v1/subscriptions/big-orders",
		`{"topic": "orders", "filter": "attributes.size = \"big\""}`), http.StatusCreated)
	for _, bad := range []struct {
		name, body string
		status     int
		why        string
	}{
		{"x-sub", `{}`, 400, "topic"},
		{"x-sub", `{"topic": "nope"}`, 404, "nope"},
		{"shipping", `{"topic": "orders"}`, 409, "shipping"},
		{"x-sub", `{"topic": "orders", "ackDeadlineSeconds": 5}`, 400, "ack"},
		{"x-sub", `{"topic": "orders", "filter": "attributes.size ="}`, 400, "filter"},
		{"x-sub", `{"topic": "orders", "deadLetterPolicy": {"deadLetterTopic": "refunds", "maxDeliveryAttempts": 101}}`, 400, "101"},
		{"x-sub", `{"topic": "orders", "pushConfig": {"pushEndpoint": "ftp://x"}}`, 400, "push"},
	} {
		want(t, "subscribe "+bad.body, call(t, s, "", "PUT", "/api/v1/subscriptions/"+bad.name, bad.body), bad.status, bad.why)
	}
	want(t, "the refused subscription", call(t, s, "", "GET", "/api/v1/subscriptions/x-sub", nil), http.StatusNotFound)
	want(t, "topic with its subscriptions", call(t, s, "", "GET", "/api/v1/topics/orders", nil), http.StatusOK,
		`"subscriptions": [`, `"big-orders"`, `"shipping"`)
	subs := decode[[]api.Subscription](t, call(t, s, "", "GET", "/api/v1/subscriptions?topic=orders", nil))
	if len(subs) != 2 || subs[0].Name != "big-orders" || subs[1].Name != "shipping" || subs[1].AckDeadlineSeconds != 30 {
		t.Errorf("subscriptions of orders: %+v", subs)
	}
	if none := decode[[]api.Subscription](t, call(t, s, "", "GET", "/api/v1/subscriptions?topic=refunds", nil)); len(none) != 0 {
		t.Errorf("subscriptions of refunds: %+v", none)
	}

	pub := api.PublishRequest{Messages: []api.Message{
		{Data: []byte("order 1"), Attributes: map[string]string{"size": "big"}},
		{Data: []byte("order 2")},
	}}
	ids := decode[api.PublishResponse](t, call(t, s, "", "POST", "/api/v1/topics/orders/publish", pub)).MessageIDs
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("publish: ids %v", ids)
	}
	want(t, "publish nothing", call(t, s, "", "POST", "/api/v1/topics/orders/publish", `{"messages": []}`), http.StatusBadRequest, "messages")
	want(t, "publish an empty message", call(t, s, "", "POST", "/api/v1/topics/orders/publish", `{"messages": [{}]}`), http.StatusBadRequest)
	want(t, "publish bad base64", call(t, s, "", "POST", "/api/v1/topics/orders/publish", `{"messages": [{"data": "%%%"}]}`), http.StatusBadRequest)
	want(t, "publish to no topic", call(t, s, "", "POST", "/api/v1/topics/nope/publish", pub), http.StatusNotFound)
	huge := fmt.Sprintf(`{"messages": [{"data": %q}]}`, base64.StdEncoding.EncodeToString(make([]byte, 10<<20+1)))
	want(t, "publish 10 MiB + 1", call(t, s, "", "POST", "/api/v1/topics/orders/publish", huge), http.StatusRequestEntityTooLarge, "at most 10485760")
	tooBig := `{"messages": [{"data": "` + strings.Repeat("A", 17<<20) + `"}]}`
	want(t, "a publish body over 16 MiB", call(t, s, "", "POST", "/api/v1/topics/orders/publish", tooBig), http.StatusRequestEntityTooLarge, "16 MiB")

	pulled := decode[api.PullResponse](t, call(t, s, "", "POST", "/api/v1/subscriptions/shipping/pull", `{"maxMessages": 10}`)).ReceivedMessages
	if len(pulled) != 2 || string(pulled[0].Message.Data) != "order 1" || pulled[0].Message.MessageID != ids[0] ||
		pulled[0].Message.PublishTime.IsZero() || pulled[0].AckID == "" {
		t.Fatalf("pull: %+v", pulled)
	}
	big := decode[api.PullResponse](t, call(t, s, "", "POST", "/api/v1/subscriptions/big-orders/pull", `{"maxMessages": 10}`)).ReceivedMessages
	if len(big) != 1 || string(big[0].Message.Data) != "order 1" {
		t.Errorf("filtered pull: %+v", big)
	}
	for _, bad := range []string{`{}`, `{"maxMessages": 1001}`, `{"maxMessages": 1, "wait": "6m"}`, `{"maxMessages": 1, "wait": "soon"}`} {
		want(t, "pull "+bad, call(t, s, "", "POST", "/api/v1/subscriptions/shipping/pull", bad), http.StatusBadRequest)
	}
	want(t, "pull from no subscription", call(t, s, "", "POST", "/api/v1/subscriptions/nope/pull", `{"maxMessages": 1}`), http.StatusNotFound)

	// Nack the first; ack the second.
	want(t, "nack", call(t, s, "", "POST", "/api/v1/subscriptions/shipping/modify-ack-deadline",
		api.ModifyAckDeadlineRequest{AckIDs: []string{pulled[0].AckID}, AckDeadlineSeconds: new(int)}), http.StatusNoContent)
	want(t, "ack", call(t, s, "", "POST", "/api/v1/subscriptions/shipping/acknowledge", api.AckRequest{AckIDs: []string{pulled[1].AckID}}),
		http.StatusNoContent)
	want(t, "ack nothing", call(t, s, "", "POST", "/api/v1/subscriptions/shipping/acknowledge", `{"ackIds": []}`), http.StatusBadRequest)
	want(t, "modify without a deadline", call(t, s, "", "POST", "/api/v1/subscriptions/shipping/modify-ack-deadline",
		`{"ackIds": ["x"]}`), http.StatusBadRequest, "ackDeadlineSeconds")
	want(t, "modify to 601 s", call(t, s, "", "POST", "/api/v1/subscriptions/shipping/modify-ack-deadline",
		`{"ackIds": ["x"], "ackDeadlineSeconds": 601}`), http.StatusBadRequest, "601")
	// The retry policy's minimum backoff of 1 s spaces the redelivery.
	again := decode[api.PullResponse](t, call(t, s, "", "POST", "/api/v1/subscriptions/shipping/pull", `{"maxMessages": 10, "wait": "10s"}`)).ReceivedMessages
	if len(again) != 1 || again[0].Message.MessageID != ids[0] {
		t.Fatalf("pull after the nack: %+v", again)
	}
	want(t, "ack it", call(t, s, "", "POST", "/api/v1/subscriptions/shipping/acknowledge", api.AckRequest{AckIDs: []string{again[0].AckID}}),
		http.StatusNoContent)
	start := time.Now()
	empty := decode[api.PullResponse](t, call(t, s, "", "POST", "/api/v1/subscriptions/shipping/pull", `{"maxMessages": 10, "wait": "300ms"}`))
	if empty.ReceivedMessages == nil || len(empty.ReceivedMessages) != 0 || time.Since(start) < 300*time.Millisecond {
		t.Errorf("a pull with nothing to pull: %+v after %s, want [] after the wait", empty, time.Since(start))
	}

	// Seek back: both come again.
	want(t, "seek", call(t, s, "", "POST", "/api/v1/subscriptions/shipping/seek", api.SeekRequest{Time: time.Now().Add(-time.Hour)}), http.StatusNoContent)
	want(t, "seek without a time", call(t, s, "", "POST", "/api/v1/subscriptions/shipping/seek", `{}`), http.StatusBadRequest, "time")
	replay := decode[api.PullResponse](t, call(t, s, "", "POST", "/api/v1/subscriptions/shipping/pull", `{"maxMessages": 10, "wait": "10s"}`)).ReceivedMessages
	if len(replay) != 2 {
		t.Errorf("after seeking back an hour: %+v", replay)
	}
	// Seek ahead: everything published so far counts as acknowledged.
	want(t, "seek ahead", call(t, s, "", "POST", "/api/v1/subscriptions/shipping/seek", api.SeekRequest{Time: time.Now().Add(time.Hour)}), http.StatusNoContent)
	if after := decode[api.PullResponse](t, call(t, s, "", "POST", "/api/v1/subscriptions/shipping/pull", `{"maxMessages": 10, "wait": "500ms"}`)); len(after.ReceivedMessages) != 0 {
		t.Errorf("after seeking an hour ahead: %+v", after)
	}

	// Deleting the topic leaves its subscriptions, detached.
	want(t, "delete topic", call(t, s, "", "DELETE", "/api/v1/topics/orders", nil), http.StatusNoContent)
	want(t, "delete it again", call(t, s, "", "DELETE", "/api/v1/topics/orders", nil), http.StatusNotFound)
	want(t, "get a deleted topic", call(t, s, "", "GET", "/api/v1/topics/orders", nil), http.StatusNotFound)
	want(t, "subscription of a deleted topic", call(t, s, "", "GET", "/api/v1/subscriptions/shipping", nil), http.StatusOK, `"topic": "_deleted-topic_"`)
	want(t, "delete subscription", call(t, s, "", "DELETE", "/api/v1/subscriptions/shipping", nil), http.StatusNoContent)
	want(t, "get it", call(t, s, "", "GET", "/api/v1/subscriptions/shipping", nil), http.StatusNotFound)
}

// TestPubSubRoles: managing topics takes the deploy role, publishing and
// pulling the invoke role, reading the read role.
func TestPubSubRoles(t *testing.T) {
	s := ducttest.Start(t)
	tokens := map[string]string{}
	for _, role := range []string{"deploy", "invoke", "read"} {
		r := call(t, s, "", "POST", "/api/v1/tokens", fmt.Sprintf(`{"name": "%s-token", "role": %q}`, role, role))
		if r.Status != http.StatusCreated {
			t.Fatalf("create a %s token: %d %s", role, r.Status, r.Body)
		}
		tokens[role] = decode[struct{ Token string }](t, r).Token
	}
	want(t, "read creates a topic", call(t, s, tokens["read"], "PUT", "/api/v1/topics/jobs", nil), http.StatusForbidden, "deploy or admin")
	want(t, "invoke creates a topic", call(t, s, tokens["invoke"], "PUT", "/api/v1/topics/jobs", nil), http.StatusForbidden)
	want(t, "deploy creates a topic", call(t, s, tokens["deploy"], "PUT", "/api/v1/topics/jobs", nil), http.StatusCreated)
	want(t, "deploy subscribes", call(t, s, tokens["deploy"], "PUT", "/api/v1/subscriptions/jobs-sub", `{"topic": "jobs"}`), http.StatusCreated)
	want(t, "no token", s.DoToken("", "GET", "/api/v1/topics", nil), http.StatusUnauthorized)
	want(t, "read lists", call(t, s, tokens["read"], "GET", "/api/v1/topics", nil), http.StatusOK, "jobs")
	want(t, "read gets", call(t, s, tokens["read"], "GET", "/api/v1/subscriptions/jobs-sub", nil), http.StatusOK)
	msg := `{"messages": [{"data": "aGk="}]}`
	want(t, "read publishes", call(t, s, tokens["read"], "POST", "/api/v1/topics/jobs/publish", msg), http.StatusForbidden, "publish or pull messages")
	want(t, "read pulls", call(t, s, tokens["read"], "POST", "/api/v1/subscriptions/jobs-sub/pull", `{"maxMessages": 1}`), http.StatusForbidden)
	want(t, "invoke publishes", call(t, s, tokens["invoke"], "POST", "/api/v1/topics/jobs/publish", msg), http.StatusOK)
	want(t, "invoke pulls", call(t, s, tokens["invoke"], "POST", "/api/v1/subscriptions/jobs-sub/pull", `{"maxMessages": 1, "wait": "10s"}`),
		http.StatusOK, `"data": "aGk="`)
	want(t, "invoke seeks", call(t, s, tokens["invoke"], "POST", "/api/v1/subscriptions/jobs-sub/seek", api.SeekRequest{Time: time.Now()}),
		http.StatusNoContent)
	want(t, "invoke reads", call(t, s, tokens["invoke"], "GET", "/api/v1/topics", nil), http.StatusForbidden)
	want(t, "invoke deletes", call(t, s, tokens["invoke"], "DELETE", "/api/v1/subscriptions/jobs-sub", nil), http.StatusForbidden)
	want(t, "deploy deletes", call(t, s, tokens["deploy"], "DELETE", "/api/v1/subscriptions/jobs-sub", nil), http.StatusNoContent)
}
