package async

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/duct-dev/duct"
)

func TestClassify(t *testing.T) {
	rep := func(o duct.Outcome, status int, instance string) *duct.Report {
		return &duct.Report{Outcome: o, Status: status, Instance: instance}
	}
	for _, tc := range []struct {
		name string
		rep  *duct.Report
		err  error
		want verdict
	}{
		{"200", rep(duct.OutcomeSuccess, 200, "i"), nil, succeed},
		{"302", rep(duct.OutcomeSuccess, 302, "i"), nil, succeed},
		{"400", rep(duct.OutcomeSuccess, 400, "i"), nil, fail},
		{"404", rep(duct.OutcomeSuccess, 404, "i"), nil, fail},
		{"408 from the function", rep(duct.OutcomeSuccess, 408, "i"), nil, retry},
		{"429 from the function", rep(duct.OutcomeSuccess, 429, "i"), nil, retry},
		{"500", rep(duct.OutcomeError, 500, "i"), nil, retry},
		{"503 from the function", rep(duct.OutcomeError, 503, "i"), nil, retry},
		{"response too large", rep(duct.OutcomeError, 502, "i"), nil, retry},
		{"request too large", rep(duct.OutcomeError, 413, "i"), nil, fail},
		{"timeout", rep(duct.OutcomeTimeout, 504, "i"), nil, retry},
		{"crash", rep(duct.OutcomeCrash, 502, "i"), nil, retry},
		{"memory", rep(duct.OutcomeMemory, 502, "i"), nil, retry},
		{"init failed", rep(duct.OutcomeInitFailed, 502, ""), nil, retry},
		{"pool full", rep(duct.OutcomeThrottled, 429, ""), nil, throttle},
		{"pool retired or shutting down", rep(duct.OutcomeThrottled, 503, ""), nil, throttle},
		{"canceled mid-request", rep(duct.OutcomeCanceled, 0, "i"), nil, requeue},
		{"canceled waiting", nil, context.Canceled, requeue},
		{"no such function", nil, duct.ErrNotFound, fail},
	} {
		if got := classify(tc.rep, tc.err); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestDelays(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 40: 24 * time.Hour} {
		if got := retryDelay(time.Minute, n); got != want {
			t.Errorf("retry %d: %s, want %s", n, got, want)
		}
	}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 6: 32 * time.Second, 7: time.Minute, 1000: time.Minute} {
		if got := throttleDelay(time.Second, time.Minute, n); got != want {
			t.Errorf("throttle %d: %s, want %s", n, got, want)
		}
	}
}

func TestPolicyOf(t *testing.T) {
	zero, five := 0, 5
	for _, tc := range []struct {
		name string
		r    *duct.RetryPolicy
		want policy
	}{
		{"none", nil, policy{maxAttempts: 3, maxAge: 6 * time.Hour}},
		{"no retries", &duct.RetryPolicy{Attempts: &zero}, policy{maxAttempts: 1, maxAge: 6 * time.Hour}},
		{"five, 10m", &duct.RetryPolicy{Attempts: &five, MaxEventAge: duct.Duration(10 * time.Minute), OnFailure: "dead"},
			policy{maxAttempts: 6, maxAge: 10 * time.Minute, onFailure: "dead"}},
		{"age raised to the least", &duct.RetryPolicy{MaxEventAge: duct.Duration(time.Second), OnSuccess: "done"},
			policy{maxAttempts: 3, maxAge: time.Minute, onSuccess: "done"}},
		{"age lowered to the most", &duct.RetryPolicy{MaxEventAge: duct.Duration(48 * time.Hour)}, policy{maxAttempts: 3, maxAge: 6 * time.Hour}},
	} {
		if got := policyOf(duct.Function{Retry: tc.r}, time.Minute); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	in := &duct.QueuedInvocation{
		ID: "0123456789abcdef", Function: "resize", Hops: 3, IdempotencyKey: "k\nv", SubmittedAt: time.Now().UTC(),
		Request: duct.InvocationRequest{Method: "POST", Path: "/a%2Fb", Query: "x=1", Host: "h",
			Header: map[string][]string{"X-A": {"1", "2"}}, Body: []byte("line one\nline two\x00\xff")},
	}
	b, err := encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Request.Body) != string(in.Request.Body) || out.IdempotencyKey != in.IdempotencyKey || !out.SubmittedAt.Equal(in.SubmittedAt) ||
		out.Request.Header["X-A"][1] != "2" || out.Hops != 3 || out.Request.Path != "/a%2Fb" {
		t.Errorf("round trip: %+v", out)
	}
	for _, bad := range []string{"", "{}", `{"id":"X","function":"f"}` + "\n", `{"id":"01","function":"API"}` + "\n"} {
		if _, err := decode([]byte(bad)); err == nil {
			t.Errorf("decode(%q) succeeded", bad)
		}
	}
}

func TestRecorder(t *testing.T) {
	r := newRecorder(8)
	r.Header().Set("X", "y")
	r.WriteHeader(http.StatusTeapot)
	r.Write([]byte("héllo wörld"))
	res := r.result()
	if res.Status != 418 || res.Body != "héllo w" || !res.Truncated || res.BodySize != 13 || res.BodyEncoding != "" || http.Header(res.Header).Get("X") != "y" {
		t.Errorf("text: %+v", res)
	}
	r = newRecorder(1 << 10)
	r.Write([]byte{0xff, 0xfe, 0})
	if res := r.result(); res.Status != 200 || res.BodyEncoding != "base64" || res.Body != "//4A" {
		t.Errorf("binary: %+v", res)
	}
	if newRecorder(1).result() != nil {
		t.Error("no answer should give no result")
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{"6fdcb8704c3b000000000000dd03": true, "": false, "ABC": false, "a.b": false, "x": false} {
		if got := validID(id); got != want {
			t.Errorf("validID(%q) = %v", id, got)
		}
	}
}
