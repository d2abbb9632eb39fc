package pubsub

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/duct-dev/duct"
)

func TestStreamingPullFlowControl(t *testing.T) {
	p, _ := testBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topic, sub := topicAndSub(t, p, Subscription{})
	msgs := make([]Message, 20)
	for i := range msgs {
		msgs[i] = Message{Data: []byte(fmt.Sprint(i))}
	}
	publish(t, p, topic, msgs...)

	st, err := p.StreamingPull(ctx, sub, StreamOptions{MaxOutstandingMessages: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var held []Received
	for len(held) < 5 {
		got, err := st.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, got...)
	}
	if len(held) != 5 {
		t.Fatalf("received %d with at most 5 outstanding", len(held))
	}
	// Full: Receive waits until something is settled.
	short, stop := context.WithTimeout(ctx, 300*time.Millisecond)
	if got, err := st.Receive(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("receive past flow control: %d messages, %v", len(got), err)
	}
	stop()
	ack(t, p, sub, held[:2]...)
	got, err := st.Receive(ctx)
	if err != nil || len(got) == 0 || len(got) > 2 {
		t.Fatalf("after acking 2: %d messages, %v", len(got), err)
	}

	// Bytes: messages of 1000 bytes, at most 2500 outstanding: 2 at a time
	// (3 would be over).
	topic2, sub2 := topicAndSub(t, p, Subscription{})
	big := make([]Message, 6)
	for i := range big {
		big[i] = Message{Data: make([]byte, 1000)}
	}
	publish(t, p, topic2, big...)
	st2, err := p.StreamingPull(ctx, sub2, StreamOptions{MaxOutstandingBytes: 2500})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	var out []Received
	for len(out) < 2 {
		got, err := st2.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got...)
	}
	if len(out) != 2 {
		t.Fatalf("received %d messages of 1000 bytes under a 2500-byte limit", len(out))
	}
	short, stop = context.WithTimeout(ctx, 300*time.Millisecond)
	defer stop()
	if got, err := st2.Receive(short); err == nil {
		t.Fatalf("receive past the byte limit gave %d messages", len(got))
	}

	// A message larger than the whole budget goes out alone, once nothing
	// else is outstanding.
	topic3, sub3 := topicAndSub(t, p, Subscription{})
	publish(t, p, topic3, Message{Data: make([]byte, 1000)}, Message{Data: make([]byte, 5000)}, Message{Data: make([]byte, 1000)})
	st3, err := p.StreamingPull(ctx, sub3, StreamOptions{MaxOutstandingBytes: 2500})
	if err != nil {
		t.Fatal(err)
	}
	defer st3.Close()
	// Without ordering keys the order is not promised: check that every
	// receive is one message and that all three arrive.
	var sizes []int
	for range 3 {
		got, err := st3.Receive(ctx)
		if err != nil || len(got) != 1 {
			t.Fatalf("want one message per receive, got %d messages (%v)", len(got), err)
		}
		sizes = append(sizes, len(got[0].Message.Data))
		ack(t, p, sub3, got...)
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{1000, 1000, 5000}) {
		t.Fatalf("received sizes %v", sizes)
	}
}

func TestStreamCloseRedelivers(t *testing.T) {
	p, _ := testBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topic, sub := topicAndSub(t, p, Subscription{AckDeadline: time.Minute})
	publish(t, p, topic, text("a", "b", "c")...)
	st, err := p.StreamingPull(ctx, sub, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []Received
	for len(got) < 3 {
		r, err := st.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r...)
	}
	ack(t, p, sub, got[0])
	start := time.Now()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Receive(ctx); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("receive after close: %v", err)
	}
	again := pullN(t, p, sub, 2, 5*time.Second)
	if time.Since(start) > 2*time.Second {
		t.Fatalf("redelivered %s after the stream closed, want at once (the ack deadline is a minute)", time.Since(start))
	}
	want := sorted([]string{string(got[1].Message.Data), string(got[2].Message.Data)})
	if d := sorted(datas(again)); d[0] != want[0] || d[1] != want[1] {
		t.Fatalf("redelivered %v, want %v", d, want)
	}
}

func TestStreamEndsWhenSubscriptionDeleted(t *testing.T) {
	p, _ := testBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, sub := topicAndSub(t, p, Subscription{})
	st, err := p.StreamingPull(ctx, sub, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := st.Receive(ctx)
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := p.DeleteSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, duct.ErrNotFound) {
		t.Fatalf("receive on a deleted subscription: %v", err)
	}
}

// pushServer answers pushes: fail makes it answer 500 to the first
// fail[n] pushes of message n.
type pushServer struct {
	mu     sync.Mutex
	bodies []pushBody
	tries  map[string]int
	times  map[string][]time.Time
	fail   map[string]int
	got    chan pushBody
}

func (ps *pushServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var b pushBody
	raw, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(raw, &b); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad push", http.StatusBadRequest)
		return
	}
	var generic map[string]map[string]any
	_ = json.Unmarshal(raw, &generic)
	ps.mu.Lock()
	d := string(b.Message.Data)
	ps.tries[d]++
	ps.times[d] = append(ps.times[d], time.Now())
	failing := ps.tries[d] <= ps.fail[d]
	if !failing {
		ps.bodies = append(ps.bodies, b)
	}
	ps.mu.Unlock()
	if failing {
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	// Google's body: data in base64, ids in both spellings.
	if m := generic["message"]; m["data"] != base64.StdEncoding.EncodeToString(b.Message.Data) || m["message_id"] != m["messageId"] || m["publish_time"] == nil {
		http.Error(w, "not Google's body", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	ps.got <- b
}

func TestPush(t *testing.T) {
	ps := &pushServer{tries: map[string]int{}, times: map[string][]time.Time{}, fail: map[string]int{"flaky": 2}, got: make(chan pushBody, 10)}
	srv := httptest.NewServer(ps) // 127.0.0.1
	defer srv.Close()
	p, _ := testBroker(t)
	ctx := context.Background()
	topic, sub := topicAndSub(t, p, Subscription{
		Push:  &PushConfig{Endpoint: srv.URL + "/push"},
		Retry: &RetryPolicy{MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second},
	})
	publish(t, p, topic, Message{Data: []byte("hello"), Attributes: map[string]string{"k": "v"}}, Message{Data: []byte("flaky")})
	got := map[string]pushBody{}
	for len(got) < 2 {
		select {
		case b := <-ps.got:
			got[string(b.Message.Data)] = b
		case <-time.After(10 * time.Second):
			t.Fatalf("pushes received: %v", got)
		}
	}
	h := got["hello"]
	if h.Subscription != "projects/duct/subscriptions/"+sub || h.Message.Attributes["k"] != "v" || h.Message.MessageID == "" || h.Message.PublishTime == "" {
		t.Fatalf("push body %+v", h)
	}
	ps.mu.Lock()
	tries, times := ps.tries["flaky"], ps.times["flaky"]
	ps.mu.Unlock()
	if tries != 3 {
		t.Fatalf("flaky message pushed %d times, want 3 (two failures)", tries)
	}
	if gap := times[1].Sub(times[0]); gap < 150*time.Millisecond {
		t.Fatalf("retried after %s, want the retry policy's backoff (200ms)", gap)
	}
	if gap := times[2].Sub(times[1]); gap < 350*time.Millisecond {
		t.Fatalf("second retry after %s, want about 400ms", gap)
	}
	// Acknowledged on 2xx: nothing more arrives.
	select {
	case b := <-ps.got:
		t.Fatalf("pushed again: %+v", b)
	case <-time.After(500 * time.Millisecond):
	}
	// Switching to pull stops pushing.
	s, _ := p.GetSubscription(ctx, sub)
	s.Push = nil
	if _, err := p.UpdateSubscription(ctx, s); err != nil {
		t.Fatal(err)
	}
	publish(t, p, topic, text("pulled")...)
	if d := datas(pullN(t, p, sub, 1, 5*time.Second)); d[0] != "pulled" {
		t.Fatalf("after switching to pull: %v", d)
	}
}
