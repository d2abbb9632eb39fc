package trigger_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/ducttest"
)

// recorder is a Python function that posts what it receives (method,
// path, headers, body) to COLLECT_URL, then answers with its path.
var recorder = ducttest.Files{"main.py": `
import json, os, urllib.request
def handler(request):
    rec = {"method": request.method, "path": request.path, "headers": dict(request.headers),
           "body": request.data.decode("utf-8", "replace")}
    req = urllib.request.Request(os.environ["COLLECT_URL"], data=json.dumps(rec).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()
    return {"path": request.path, "type": request.headers.get("ce-type")}
`}

// record is one request a recorder function received.
type record struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// collector receives what recorder functions post.
type collector struct {
	URL string
	c   chan record
}

func newCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{c: make(chan record, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec record
		if err := json.NewDecoder(r.Body).Decode(&rec); err != nil {
			t.Errorf("collector: %v", err)
		}
		c.c <- rec
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

func (c *collector) next(t *testing.T, what string) record {
	t.Helper()
	select {
	case r := <-c.c:
		return r
	case <-time.After(15 * time.Second):
		t.Fatalf("waited 15s for %s", what)
		return record{}
	}
}

// quiet fails if anything arrives within d.
func (c *collector) quiet(t *testing.T, d time.Duration, why string) {
	t.Helper()
	select {
	case r := <-c.c:
		t.Fatalf("%s, yet the function received %s %s (%s)", why, r.Method, r.Path, r.Headers["ce-type"])
	case <-time.After(d):
	}
}

// drain empties the collector after d of quiet.
func (c *collector) drain(d time.Duration) {
	for {
		select {
		case <-c.c:
		case <-time.After(d):
			return
		}
	}
}

func recorderSpec(c *collector, triggers string) string {
	return fmt.Sprintf("runtime: python\nnetwork: outbound\nenv: {COLLECT_URL: %q}\ntriggers:\n%s", c.URL, triggers)
}

type triggersAnswer struct {
	Version  int `json:"version"`
	Triggers []struct {
		Index          int        `json:"index"`
		ID             string     `json:"id"`
		Kind           string     `json:"kind"`
		Next           *time.Time `json:"next"`
		LastTick       *time.Time `json:"lastTick"`
		LastInvocation string     `json:"lastInvocation"`
		Subscription   string     `json:"subscription"`
	} `json:"triggers"`
}

func getTriggers(t *testing.T, s *ducttest.Server, fn string) triggersAnswer {
	t.Helper()
	r := s.Get("/api/v1/functions/" + fn + "/triggers")
	if r.Status != 200 {
		t.Fatalf("GET triggers of %s: %d %s", fn, r.Status, r.Body)
	}
	var a triggersAnswer
	if err := json.Unmarshal([]byte(r.Body), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestScheduleTrigger(t *testing.T) {
	s := ducttest.Start(t)
	c := newCollector(t)
	s.Deploy("tick", recorder, recorderSpec(c, `  - schedule: {cron: "* * * * * *", timezone: Europe/Paris}`))

	first := c.next(t, "a tick")
	if first.Headers["ce-type"] != "com.duct.schedule.tick" || first.Headers["ce-specversion"] != "1.0" || first.Method != "POST" {
		t.Fatalf("tick delivered as %+v", first)
	}
	var data struct {
		Schedule, Timezone string
		ScheduledTime      time.Time
	}
	if err := json.Unmarshal([]byte(first.Body), &data); err != nil || data.Schedule != "* * * * * *" || data.Timezone != "Europe/Paris" {
		t.Fatalf("tick data %q (%v)", first.Body, err)
	}
	if tick, err := time.Parse(time.RFC3339, first.Headers["ce-time"]); err != nil || !tick.Equal(data.ScheduledTime) || tick.Nanosecond() != 0 {
		t.Fatalf("ce-time %q, scheduled %s", first.Headers["ce-time"], data.ScheduledTime)
	}
	second := c.next(t, "a second tick")
	if second.Headers["ce-id"] == first.Headers["ce-id"] {
		t.Fatalf("two deliveries of tick %s", first.Headers["ce-id"])
	}

	a := getTriggers(t, s, "tick")
	if len(a.Triggers) != 1 || a.Triggers[0].Kind != "schedule" || a.Triggers[0].Next == nil {
		t.Fatalf("triggers %+v", a)
	}
	ducttest.Eventually(t, 5*time.Second, "the last tick's invocation to succeed", func() bool {
		a = getTriggers(t, s, "tick")
		if a.Triggers[0].LastInvocation == "" {
			return false
		}
		r := s.Get("/api/v1/invocations/" + a.Triggers[0].LastInvocation)
		return r.Status == 200 && strings.Contains(r.Body, `"status": "succeeded"`)
	})

	// Removing the trigger (a new version) stops the ticks.
	r := s.Do("PUT", "/api/v1/functions/tick/triggers", strings.NewReader(`{"triggers": [], "version": 1}`), "Content-Type", "application/json")
	if r.Status != 201 || !strings.Contains(r.Body, `"version": 2`) {
		t.Fatalf("PUT no triggers: %d %s", r.Status, r.Body)
	}
	c.drain(500 * time.Millisecond)
	c.quiet(t, 1500*time.Millisecond, "the schedule was removed")
}

func TestDeployRefusesBadTriggers(t *testing.T) {
	s := ducttest.Start(t)
	src := ducttest.Archive(t, ducttest.Files{"main.py": "def handler(request):\n    return 'ok'\n"})
	if r := s.DeployRaw("hooks", src, "runtime: python\ntriggers:\n  - http: {path: /hooks/slack, methods: [POST]}"); r.Status != 201 {
		t.Fatalf("deploy: %d %v", r.Status, r.Problem)
	}
	tests := []struct {
		trigger string
		status  int
		want    string
	}{
		{`schedule: {cron: "61 * * * *"}`, 400, "triggers[0].schedule.cron"},
		{`schedule: {cron: "0 0 30 2 *"}`, 400, "never fire"},
		{`schedule: {cron: "@every 10ms"}`, 400, "at least 1s"},
		{`schedule: {cron: "0 * * * *", timezone: Mars/Olympus}`, 400, "not a known time zone"},
		{`schedule: {cron: "0 * * * *", timezone: Local}`, 400, "IANA"},
		{`topic: {name: uploads, filter: "attributes.kind ="}`, 400, "filter"},
		{`topic: {name: "1bad"}`, 400, "topic name"},
		{`http: {path: /api/v1/evil}`, 400, "Duct's own"},
		{`http: {path: /fn/other}`, 400, "Duct's own"},
		{`http: {path: /metrics}`, 400, "Duct's own"},
		{`http: {path: "/*"}`, 400, "every path"},
		{`http: {path: /a/*/b}`, 400, "only at the end"},
		{`http: {path: /ok, methods: [post]}`, 400, "upper case"},
		{`http: {path: /hooks/slack}`, 409, `served by function "hooks"`},
		{`http: {path: /hooks/slack, methods: [POST, GET]}`, 409, `served by function "hooks"`},
	}
	for _, tt := range tests {
		r := s.DeployRaw("other", src, "runtime: python\ntriggers:\n  - "+tt.trigger)
		detail, _ := r.Problem["detail"].(string)
		if r.Status != tt.status || !strings.Contains(detail, tt.want) {
			t.Errorf("deploy with %s: %d %q, want %d about %q", tt.trigger, r.Status, detail, tt.status, tt.want)
		}
	}
	// Another method on the same path is not a conflict.
	if r := s.DeployRaw("other", src, "runtime: python\ntriggers:\n  - http: {path: /hooks/slack, methods: [GET]}"); r.Status != 201 {
		t.Fatalf("deploy GET /hooks/slack beside POST: %d %v", r.Status, r.Problem)
	}
}

func TestHTTPRouteTrigger(t *testing.T) {
	s := ducttest.Start(t)
	echo := ducttest.Files{"main.py": `
def handler(request):
    return {"method": request.method, "path": request.path, "q": request.args, "body": request.data.decode()}
`}
	s.Deploy("slack", echo, "runtime: python\ntriggers:\n  - http: {path: /hooks/slack, methods: [POST]}\n  - http: {path: /gh/*}")
	s.Deploy("token", echo, "runtime: python\ninvoke: token\ntriggers:\n  - http: {path: /private}")

	type echoed struct {
		Method, Path, Body string
		Q                  map[string]string
	}
	echo1 := func(r ducttest.Response) echoed {
		var e echoed
		json.Unmarshal([]byte(r.Body), &e)
		return e
	}
	r := s.Do("POST", "/hooks/slack?x=1", strings.NewReader("hello"))
	if e := echo1(r); r.Status != 200 || e.Path != "/hooks/slack" || e.Body != "hello" || e.Q["x"] != "1" {
		t.Fatalf("POST /hooks/slack: %d %s", r.Status, r.Body)
	}
	if r := s.Get("/hooks/slack"); r.Status != 405 || r.Header.Get("Allow") != "POST" {
		t.Fatalf("GET /hooks/slack: %d, Allow %q, want 405 with Allow: POST", r.Status, r.Header.Get("Allow"))
	}
	for _, p := range []string{"/gh", "/gh/", "/gh/push/main"} {
		if r := s.Do("PUT", p, nil); r.Status != 200 || echo1(r).Path != p {
			t.Fatalf("PUT %s: %d %s", p, r.Status, r.Body)
		}
	}
	if r := s.Get("/ghost"); r.Status != 404 {
		t.Fatalf("GET /ghost: %d, want 404", r.Status)
	}
	// A route to a token-mode function wants a token, as /fn/ does.
	if r := s.DoToken("", "GET", "/private", nil); r.Status != 401 {
		t.Fatalf("GET /private without a token: %d", r.Status)
	}
	if r := s.DoToken(ducttest.AdminToken, "GET", "/private", nil); r.Status != 200 {
		t.Fatalf("GET /private with a token: %d %s", r.Status, r.Body)
	}
	// Duct's own paths still answer.
	if r := s.Get("/healthz"); r.Status != 200 {
		t.Fatalf("/healthz: %d", r.Status)
	}
	// Routes go with their function.
	if r := s.Do("DELETE", "/api/v1/functions/slack", nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := s.Do("POST", "/hooks/slack", strings.NewReader("hello")); r.Status != 404 {
		t.Fatalf("POST /hooks/slack after the function was removed: %d", r.Status)
	}
}

func TestEventIngress(t *testing.T) {
	s := ducttest.Start(t)
	c := newCollector(t)
	s.Deploy("welcome", recorder, recorderSpec(c, `  - event: {type: com.example.user.created, source: "https://example.com/*"}`))
	s.Deploy("audit", recorder, recorderSpec(c, `  - event: {type: com.example.user.created}`))

	type accepted struct {
		Events []struct {
			ID          string
			Invocations []struct{ Function, Invocation, Location string }
		}
	}
	post := func(body string, header ...string) (int, accepted, string) {
		t.Helper()
		r := s.Do("POST", "/api/v1/events", strings.NewReader(body), header...)
		var a accepted
		if r.Status == 202 {
			if err := json.Unmarshal([]byte(r.Body), &a); err != nil {
				t.Fatal(err)
			}
		}
		return r.Status, a, r.Body
	}

	// Binary mode, matching both.
	status, a, body := post(`{"user":"ada"}`, "Ce-Specversion", "1.0", "Ce-Id", "e-1", "Ce-Source", "https://example.com/signup",
		"Ce-Type", "com.example.user.created", "Ce-Subject", "users/ada", "Ce-Tenant", "acme", "Content-Type", "application/json")
	if status != 202 || len(a.Events) != 1 || len(a.Events[0].Invocations) != 2 {
		t.Fatalf("binary event: %d %s", status, body)
	}
	got := map[string]record{}
	for range 2 {
		r := c.next(t, "the event")
		got[r.Headers["ce-source"]+" "+r.Headers["x-duct-invocation-id"]] = r
		if r.Headers["ce-type"] != "com.example.user.created" || r.Headers["ce-id"] != "e-1" || r.Headers["ce-subject"] != "users/ada" ||
			r.Headers["ce-tenant"] != "acme" || r.Body != `{"user":"ada"}` || r.Headers["x-duct-hops"] != "1" {
			t.Fatalf("delivered as %+v", r)
		}
	}
	for _, inv := range a.Events[0].Invocations {
		ducttest.Eventually(t, 5*time.Second, "invocation "+inv.Invocation+" to succeed", func() bool {
			r := s.Get(inv.Location)
			return r.Status == 200 && strings.Contains(r.Body, `"status": "succeeded"`)
		})
	}
	// The same event again is not queued twice.
	status, b, _ := post(`{"user":"ada"}`, "Ce-Specversion", "1.0", "Ce-Id", "e-1", "Ce-Source", "https://example.com/signup",
		"Ce-Type", "com.example.user.created", "Content-Type", "application/json")
	if status != 202 || len(b.Events[0].Invocations) != 2 || b.Events[0].Invocations[0].Invocation != a.Events[0].Invocations[0].Invocation {
		t.Fatalf("the same event again: %d %+v, want the first invocations %+v", status, b, a)
	}

	// Structured mode, a source only "audit" takes.
	status, a, body = post(`{"specversion":"1.0","id":"e-2","source":"https://other.example/x","type":"com.example.user.created",
		"datacontenttype":"text/plain","data":"plain words"}`, "Content-Type", "application/cloudevents+json")
	if status != 202 || len(a.Events[0].Invocations) != 1 || a.Events[0].Invocations[0].Function != "audit" {
		t.Fatalf("structured event: %d %s", status, body)
	}
	if r := c.next(t, "the structured event"); r.Body != "plain words" || r.Headers["content-type"] != "text/plain" || r.Headers["ce-id"] != "e-2" {
		t.Fatalf("delivered as %+v", r)
	}

	// A batch; an event nobody listens for is accepted with no invocation.
	status, a, body = post(`[{"specversion":"1.0","id":"e-3","source":"/x","type":"com.example.nobody"},
		{"specversion":"1.0","id":"e-4","source":"https://example.com/b","type":"com.example.user.created","data_base64":"AAE="}]`,
		"Content-Type", "application/cloudevents-batch+json")
	if status != 202 || len(a.Events) != 2 || len(a.Events[0].Invocations) != 0 || len(a.Events[1].Invocations) != 2 {
		t.Fatalf("batch: %d %s", status, body)
	}
	c.next(t, "the batch's event")
	c.next(t, "the batch's event")

	// Malformed events.
	for _, tt := range []struct {
		body   string
		header []string
	}{
		{`{"specversion":"1.0","source":"/x","type":"t"}`, []string{"Content-Type", "application/cloudevents+json"}},
		{`{"specversion":"0.3","id":"1","source":"/x","type":"t"}`, []string{"Content-Type", "application/cloudevents+json"}},
		{`{"specversion":"1.0","id":"1","source":"/x"}`, []string{"Content-Type", "application/cloudevents+json"}},
		{`not json`, []string{"Content-Type", "application/cloudevents+json"}},
		{`{}`, []string{"Content-Type", "application/json"}},
		{`x`, []string{"Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Type", "t"}},
		{`x`, []string{"Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Type", "t", "Ce-Source", "/x", "Ce-Time", "yesterday"}},
	} {
		if status, _, body := post(tt.body, tt.header...); status != 400 || !strings.Contains(body, `"status":400`) {
			t.Errorf("POST %s %v: %d %s, want 400", tt.body, tt.header, status, body)
		}
	}
	// Role invoke is enough; a read token is not.
	tok := newToken(t, s, "read")
	if r := s.DoToken(tok, "POST", "/api/v1/events", strings.NewReader(`x`), "Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Type", "t", "Ce-Source", "/x"); r.Status != 403 {
		t.Fatalf("POST /api/v1/events with a read token: %d", r.Status)
	}
}

func newToken(t *testing.T, s *ducttest.Server, role string) string {
	t.Helper()
	r := s.Do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"t-`+role+`","role":"`+role+`"}`), "Content-Type", "application/json")
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(r.Body), &tok); err != nil || tok.Token == "" {
		t.Fatalf("create token: %d %s", r.Status, r.Body)
	}
	return tok.Token
}

// TestTopicTriggerChain: a message on "orders" reaches function A, which
// publishes to "shipments" through the API, whose trigger runs function
// B. Removing B deletes its subscription.
func TestTopicTriggerChain(t *testing.T) {
	s := ducttest.Start(t)
	c := newCollector(t)
	forward := ducttest.Files{"main.py": `
import base64, json, os, urllib.request
def handler(request):
    msg = request.json["message"]
    data = base64.b64decode(msg["data"]).decode()
    out = {"messages": [{"data": base64.b64encode(("shipped " + data).encode()).decode(),
                         "attributes": {"duct-hops": request.headers.get("x-duct-hops", "0")}}]}
    req = urllib.request.Request(os.environ["API_URL"] + "/api/v1/topics/shipments/publish", data=json.dumps(out).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["API_TOKEN"]})
    urllib.request.urlopen(req, timeout=5).read()
    return "", 204
`}
	s.Deploy("ship", forward, fmt.Sprintf("runtime: python\nnetwork: outbound\nenv: {API_URL: %q, API_TOKEN: %q}\ntriggers:\n  - topic: {name: orders}",
		s.URL, ducttest.AdminToken))
	s.Deploy("notify", recorder, recorderSpec(c, `  - topic: {name: shipments, filter: 'attributes:duct-hops'}`))

	publish := func(topic, data string, attrs map[string]string) string {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"messages": []map[string]any{{"data": base64.StdEncoding.EncodeToString([]byte(data)), "attributes": attrs}}})
		r := s.Do("POST", "/api/v1/topics/"+topic+"/publish", strings.NewReader(string(body)), "Content-Type", "application/json")
		if r.Status != 200 {
			t.Fatalf("publish to %s: %d %s", topic, r.Status, r.Body)
		}
		var out struct{ MessageIDs []string }
		json.Unmarshal([]byte(r.Body), &out)
		return out.MessageIDs[0]
	}
	publish("orders", "order 42", map[string]string{"kind": "book"})
	r := c.next(t, "the shipment")
	if r.Headers["ce-type"] != "google.cloud.pubsub.topic.v1.messagePublished" || r.Headers["ce-source"] != "//pubsub.googleapis.com/projects/duct/topics/shipments" ||
		r.Headers["x-duct-hops"] != "2" || r.Headers["content-type"] != "application/json" {
		t.Fatalf("notify got %+v", r)
	}
	var ev struct {
		Message struct {
			Data        []byte
			Attributes  map[string]string
			MessageID   string `json:"messageId"`
			PublishTime time.Time
		}
		Subscription string
	}
	if err := json.Unmarshal([]byte(r.Body), &ev); err != nil {
		t.Fatal(err)
	}
	a := getTriggers(t, s, "notify")
	sub := a.Triggers[0].Subscription
	if string(ev.Message.Data) != "shipped order 42" || ev.Message.Attributes["duct-hops"] != "1" || ev.Message.MessageID != r.Headers["ce-id"] ||
		ev.Subscription != "projects/duct/subscriptions/"+sub || sub != "fn.notify."+a.Triggers[0].ID {
		t.Fatalf("notify got data %s", r.Body)
	}
	if pt, err := time.Parse(time.RFC3339Nano, r.Headers["ce-time"]); err != nil || !pt.Equal(ev.Message.PublishTime) {
		t.Fatalf("ce-time %q, publish time %s", r.Headers["ce-time"], ev.Message.PublishTime)
	}
	// The filter holds back what it does not match.
	publish("shipments", "no hops", map[string]string{"x": "y"})
	c.quiet(t, 500*time.Millisecond, "the message does not match the trigger's filter")

	// Removed with its function.
	if r := s.Get("/api/v1/subscriptions/" + sub); r.Status != 200 {
		t.Fatalf("subscription %s: %d", sub, r.Status)
	}
	if r := s.Do("DELETE", "/api/v1/functions/notify", nil); r.Status != 204 {
		t.Fatalf("delete notify: %d", r.Status)
	}
	if r := s.Get("/api/v1/subscriptions/" + sub); r.Status != 404 {
		t.Fatalf("subscription %s after its function was removed: %d", sub, r.Status)
	}
	publish("orders", "order 43", nil)
	c.quiet(t, time.Second, "notify was removed")
}

// TestTriggersAfterRestart: a restarted server serves its functions'
// triggers again from the store: the topic trigger's subscription (kept
// across the restart) and the HTTP route.
func TestTriggersAfterRestart(t *testing.T) {
	s := ducttest.Start(t)
	c := newCollector(t)
	s.Deploy("rec", recorder, recorderSpec(c, "  - topic: {name: restarts}\n  - http: {path: /rec}"))
	s.Stop()

	cfg := s.Config
	s2 := ducttest.StartConfig(t, cfg)
	body := `{"messages":[{"data":"` + base64.StdEncoding.EncodeToString([]byte("after")) + `"}]}`
	if r := s2.Do("POST", "/api/v1/topics/restarts/publish", strings.NewReader(body), "Content-Type", "application/json"); r.Status != 200 {
		t.Fatalf("publish: %d %s", r.Status, r.Body)
	}
	if r := c.next(t, "the message after the restart"); r.Headers["ce-source"] != "//pubsub.googleapis.com/projects/duct/topics/restarts" {
		t.Fatalf("got %+v", r)
	}
	if r := s2.Do("POST", "/rec", strings.NewReader("x")); r.Status != 200 {
		t.Fatalf("POST /rec after the restart: %d %s", r.Status, r.Body)
	}
}

// TestScheduleTwoNodes: two servers share one store (the first's NATS);
// both run the schedule, and each tick reaches the function once.
func TestScheduleTwoNodes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	natsAddr := ln.Addr().String()
	ln.Close()
	a := ducttest.Start(t, func(c *daemon.Config) { c.NATSListen = natsAddr })
	b := ducttest.Start(t, func(c *daemon.Config) { c.NATS = "nats://" + natsAddr })
	c := newCollector(t)
	a.Deploy("tick", recorder, recorderSpec(c, `  - schedule: {cron: "* * * * * *"}`))
	ducttest.Eventually(t, 10*time.Second, "the second server to serve the function", func() bool {
		return b.Get("/api/v1/functions/tick").Status == 200 && b.Invoke("tick", "GET", "/", "").Status == 200
	})
	c.next(t, "the direct call") // the call above went through the recorder too
	seen := map[string]bool{}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case r := <-c.c:
			id := r.Headers["ce-id"]
			if r.Headers["ce-type"] != "com.duct.schedule.tick" {
				continue
			}
			if seen[id] {
				t.Fatalf("tick %s reached the function twice", id)
			}
			seen[id] = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	if len(seen) < 2 {
		t.Fatalf("%d ticks in 3s", len(seen))
	}
}
