package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/ducttest"
)

var hopsEcho = ducttest.Files{"index.js": `
exports.handler = async (req, res) => res.json({hops: req.get("x-duct-hops"), other: req.get("x-duct-other") || null});`}

// TestHops: every request to an instance carries X-Duct-Hops, one more
// than the caller sent; past 16 the gateway refuses with 508 and records
// it.
func TestHops(t *testing.T) {
	s := ducttest.Start(t)
	s.Deploy("hops", hopsEcho, "")
	for _, tc := range []struct {
		sent   []string
		status int
		hops   string
	}{
		{nil, 200, "1"},
		{[]string{"0"}, 200, "1"},
		{[]string{" 7 "}, 200, "8"},
		{[]string{"15"}, 200, "16"},
		{[]string{"16"}, 508, ""},
		{[]string{"99999999999999999999"}, 400, ""},
		{[]string{"-1"}, 400, ""},
		{[]string{"two"}, 400, ""},
		{[]string{"1", "2"}, 400, ""},
	} {
		req, _ := http.NewRequest("GET", s.URL+"/fn/hops", nil)
		for _, v := range tc.sent {
			req.Header.Add("X-Duct-Hops", v)
		}
		req.Header.Set("X-Duct-Other", "stripped")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("X-Duct-Hops %q: status %d, want %d: %s", tc.sent, resp.StatusCode, tc.status, body)
			continue
		}
		if tc.status != 200 {
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("X-Duct-Hops %q: %s answer of type %q", tc.sent, resp.Status, ct)
			}
			continue
		}
		var got struct{ Hops, Other *string }
		json.Unmarshal(body, &got)
		if got.Hops == nil || *got.Hops != tc.hops || got.Other != nil {
			t.Errorf("X-Duct-Hops %q: the function saw %s", tc.sent, body)
		}
	}
	ducttest.Eventually(t, 5*time.Second, "a report of the refused request", func() bool {
		r := s.Get("/api/v1/functions/hops/logs")
		return strings.Contains(r.Body, `"status":508,"outcome":"loop"`)
	})
}

// TestSelfCallStops: a function that calls itself, forwarding
// X-Duct-Hops, is stopped at the 16th hop.
func TestSelfCallStops(t *testing.T) {
	s := ducttest.Start(t)
	sandboxed(t, s)
	s.Deploy("ouroboros", ducttest.Files{"index.js": `
exports.handler = async (req, res) => {
  const hops = req.get("x-duct-hops");
  const r = await fetch(process.env.SELF, {headers: {"x-duct-hops": hops}});
  const text = await r.text();
  res.json({hops: Number(hops), next: r.status, inner: r.status === 200 ? JSON.parse(text) : null});
};`}, fmt.Sprintf(`{"network": "outbound", "concurrency": 20, "env": {"SELF": %q}}`, s.URL+"/fn/ouroboros"))
	r := s.Invoke("ouroboros", "GET", "/", "")
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	type link struct {
		Hops, Next int
		Inner      *link
	}
	var l link
	if err := json.Unmarshal([]byte(r.Body), &l); err != nil {
		t.Fatalf("%v: %s", err, r.Body)
	}
	depth := 1
	for p := &l; p.Inner != nil; p = p.Inner {
		depth++
		if p.Inner.Hops != p.Hops+1 {
			t.Fatalf("hop %d called hop %d", p.Hops, p.Inner.Hops)
		}
		if p.Inner.Inner == nil && (p.Inner.Next != http.StatusLoopDetected || p.Inner.Hops != 16) {
			t.Fatalf("the last link: %+v", p.Inner)
		}
	}
	if depth != 16 {
		t.Errorf("the chain ran %d deep, want 16", depth)
	}
}

// TestCutResponseReleasesInstance: a response cut short after its status
// line went out (here: a timeout mid-stream) still releases its instance
// slot and is recorded.
func TestCutResponseReleasesInstance(t *testing.T) {
	s := ducttest.Start(t, func(c *daemon.Config) { c.QueueTimeout = 3 * time.Second })
	s.Deploy("dribble", ducttest.Files{"main.go": `package main

import (
	"net/http"
	"os"
	"time"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			w.Write([]byte("ok"))
			return
		}
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		time.Sleep(5 * time.Second)
	})
	http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
}
`}, `{"timeout": "1s", "maxInstances": 1}`)
	resp, err := http.Get(s.URL + "/fn/dribble/")
	if err == nil {
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	r := s.Invoke("dribble", "GET", "/ok", "")
	if r.Status != 200 || r.Body != "ok" {
		t.Fatalf("the next request: %d %s", r.Status, r.Body)
	}
	ducttest.Eventually(t, 5*time.Second, "a report of the timed-out request", func() bool {
		return strings.Contains(s.Get("/api/v1/functions/dribble/logs").Body, `"outcome":"timeout"`)
	})
}
