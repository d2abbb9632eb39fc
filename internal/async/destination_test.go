package async_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/async"
	"github.com/duct-dev/duct/internal/ducttest"
)

// TestDestinations: the outcome of an invocation goes to the function's
// onSuccess or onFailure topic; a topic that does not exist is recorded
// as such.
func TestDestinations(t *testing.T) {
	s := ducttest.Start(t, fast)
	for _, name := range []string{"failures", "successes"} {
		if r := s.Do("PUT", "/api/v1/topics/"+name, strings.NewReader(`{}`), "Content-Type", "application/json"); r.Status >= 300 {
			t.Fatalf("create topic %s: %d %s", name, r.Status, r.Body)
		}
		if r := s.Do("PUT", "/api/v1/subscriptions/"+name+"-sub", strings.NewReader(`{"topic":"`+name+`"}`), "Content-Type", "application/json"); r.Status >= 300 {
			t.Fatalf("create subscription: %d %s", r.Status, r.Body)
		}
	}
	s.Deploy("worker", worker, "retry: {attempts: 1, onFailure: failures, onSuccess: successes}")
	failed := submit(t, s, "worker", "POST", "/fail?status=500", "the payload", "Content-Type", "text/plain", "X-Duct-Hops", "2")
	succeeded := submit(t, s, "worker", "GET", "/", "")

	for _, tc := range []struct {
		id, sub, condition string
		status             duct.InvocationStatus
		attempts, last     int
	}{
		{failed, "failures-sub", "failure", duct.InvocationFailed, 2, 500},
		{succeeded, "successes-sub", "success", duct.InvocationSucceeded, 1, 200},
	} {
		inv := settled(t, s, tc.id)
		d := inv.Destination
		if inv.Status != tc.status || d == nil || d.Condition != tc.condition || d.State != "published" || d.MessageID == "" {
			t.Fatalf("record: %+v, destination %+v", inv, d)
		}
		r := s.Do("POST", "/api/v1/subscriptions/"+tc.sub+"/pull", strings.NewReader(`{"maxMessages": 10, "wait": "10s"}`), "Content-Type", "application/json")
		var pulled struct {
			ReceivedMessages []struct {
				Message struct {
					Data       []byte
					Attributes map[string]string
					MessageID  string
				}
			}
		}
		if err := json.Unmarshal([]byte(r.Body), &pulled); err != nil || len(pulled.ReceivedMessages) != 1 {
			t.Fatalf("pull %s: %d %s", tc.sub, r.Status, r.Body)
		}
		m := pulled.ReceivedMessages[0].Message
		if m.MessageID != d.MessageID || m.Attributes[async.AttrInvocation] != tc.id || m.Attributes[async.AttrCondition] != tc.condition ||
			m.Attributes[async.AttrFunction] != "worker" || m.Attributes[duct.AttrHops] == "" {
			t.Errorf("message %s, attributes %v", m.MessageID, m.Attributes)
		}
		var out async.Outcome
		if err := json.Unmarshal(m.Data, &out); err != nil {
			t.Fatalf("%v: %s", err, m.Data)
		}
		if out.ID != tc.id || out.Attempts != tc.attempts || out.LastStatus != tc.last || out.Condition != tc.condition || out.Status != tc.status {
			t.Errorf("outcome %+v", out)
		}
		if tc.condition == "failure" {
			raw, _ := json.Marshal(out.Request)
			if string(out.Request.Body) != "the payload" || !strings.Contains(string(raw), base64.StdEncoding.EncodeToString([]byte("the payload"))) ||
				out.Request.Method != "POST" || out.Request.Path != "/fail" || !strings.Contains(out.Error, "500") || m.Attributes[duct.AttrHops] != "3" {
				t.Errorf("failure outcome %+v, hops %s", out, m.Attributes[duct.AttrHops])
			}
		}
	}

	s.Deploy("lost", worker, "retry: {attempts: 0, onFailure: nowhere}")
	inv := settled(t, s, submit(t, s, "lost", "GET", "/fail", ""))
	if d := inv.Destination; inv.Status != duct.InvocationFailed || d == nil || d.State != "failed" || !strings.Contains(d.Error, `topic "nowhere" does not exist`) {
		t.Errorf("record %+v, destination %+v", inv, d)
	}
}

// settled waits for an invocation to be final and its destination sent
// (or given up).
func settled(t *testing.T, s *ducttest.Server, id string) duct.Invocation {
	t.Helper()
	var inv duct.Invocation
	ducttest.Eventually(t, 20*time.Second, "invocation "+id+" to settle", func() bool {
		inv = record(t, s, id)
		return inv.Status.Final() && (inv.Destination == nil || inv.Destination.State != "pending")
	})
	return inv
}
