package pubsub

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestHammer publishes from many goroutines while others pull, stream,
// ack, nack and extend leases, and checks that every message is
// delivered and acknowledged and that none is delivered after its ack.
func TestHammer(t *testing.T) {
	p, _ := testBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic, sub := topicAndSub(t, p, Subscription{Retry: &RetryPolicy{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}})
	publishers, perPublisher := 6, 400
	if testing.Short() {
		perPublisher = 100
	}
	total := publishers * perPublisher

	var mu sync.Mutex
	published := map[string]bool{}  // data → acknowledged by Publish
	acked := map[string]time.Time{} // data → when its Acknowledge returned
	deliveries := 0
	var violations []string

	var pubs sync.WaitGroup
	for w := range publishers {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < perPublisher; {
				n := min(1+r.IntN(40), perPublisher-i)
				if r.IntN(3) == 0 {
					n = 1
				}
				msgs := make([]Message, n)
				for j := range msgs {
					msgs[j] = Message{Data: []byte(fmt.Sprintf("p%d-%d", w, i+j))}
				}
				if _, err := p.Publish(ctx, topic, msgs); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				mu.Lock()
				for _, m := range msgs {
					published[string(m.Data)] = true
				}
				mu.Unlock()
				i += n
			}
		}()
	}

	done := make(chan struct{})
	// handle settles a batch of deliveries: mostly acks, some nacks, some
	// lease extensions first.
	handle := func(r *rand.Rand, got []Received) {
		var acks []string
		now := time.Now()
		mu.Lock()
		for _, g := range got {
			deliveries++
			d := string(g.Message.Data)
			if at, ok := acked[d]; ok && now.After(at) {
				violations = append(violations, fmt.Sprintf("%s delivered %s after its ack", d, now.Sub(at)))
			}
		}
		mu.Unlock()
		for _, g := range got {
			switch x := r.IntN(10); {
			case x == 0:
				if err := p.ModifyAckDeadline(ctx, sub, []string{g.AckID}, 0); err != nil && ctx.Err() == nil {
					t.Errorf("nack: %v", err)
				}
			case x == 1:
				if err := p.ModifyAckDeadline(ctx, sub, []string{g.AckID}, 30*time.Second); err != nil && ctx.Err() == nil {
					t.Errorf("extend: %v", err)
				}
				acks = append(acks, g.AckID)
			default:
				acks = append(acks, g.AckID)
			}
		}
		if len(acks) == 0 {
			return
		}
		if err := p.Acknowledge(ctx, sub, acks); err != nil {
			if ctx.Err() == nil {
				t.Errorf("ack: %v", err)
			}
			return
		}
		at := time.Now()
		mu.Lock()
		for _, g := range got {
			for _, a := range acks {
				if a == g.AckID {
					if _, ok := acked[string(g.Message.Data)]; !ok {
						acked[string(g.Message.Data)] = at
					}
				}
			}
		}
		n := len(acked)
		mu.Unlock()
		if n == total {
			select {
			case <-done:
			default:
				close(done)
			}
		}
	}
	var cons sync.WaitGroup
	for c := range 4 {
		cons.Add(1)
		go func() {
			defer cons.Done()
			r := rand.New(rand.NewPCG(uint64(c), 2))
			if c%2 == 0 {
				for {
					pctx, stop := context.WithTimeout(ctx, 500*time.Millisecond)
					got, _ := p.Pull(pctx, sub, 1+r.IntN(100), true)
					stop()
					handle(r, got)
					select {
					case <-done:
						return
					case <-ctx.Done():
						return
					default:
					}
				}
			}
			st, err := p.StreamingPull(ctx, sub, StreamOptions{MaxOutstandingMessages: 50})
			if err != nil {
				t.Error(err)
				return
			}
			defer st.Close()
			for {
				rctx, stop := context.WithTimeout(ctx, 500*time.Millisecond)
				got, _ := st.Receive(rctx)
				stop()
				handle(r, got)
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				default:
				}
			}
		}()
	}
	pubs.Wait()
	select {
	case <-done:
	case <-ctx.Done():
	}
	cancel()
	cons.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, v := range violations {
		t.Error(v)
	}
	if len(published) != total {
		t.Fatalf("published %d of %d", len(published), total)
	}
	missing := 0
	for d := range published {
		if _, ok := acked[d]; !ok {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d messages never delivered and acknowledged", missing, total)
	}
	t.Logf("%d messages, %d deliveries", total, deliveries)
}

// TestCoalescedIDs: requests stored together in one batch each get the
// ids of their own messages, in order.
func TestCoalescedIDs(t *testing.T) {
	p, _ := testBroker(t)
	ctx := context.Background()
	topic, sub := topicAndSub(t, p, Subscription{})
	var mu sync.Mutex
	want := map[string]string{} // id → data
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				msgs := make([]Message, 1+(g+i)%3)
				for j := range msgs {
					msgs[j] = Message{Data: []byte(fmt.Sprintf("%d-%d-%d", g, i, j))}
				}
				ids, err := p.Publish(ctx, topic, msgs)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for j, id := range ids {
					if _, dup := want[id]; dup {
						t.Errorf("id %s given twice", id)
					}
					want[id] = string(msgs[j].Data)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	got := pullN(t, p, sub, len(want), 20*time.Second)
	for _, r := range got {
		if d := want[r.Message.ID]; d != string(r.Message.Data) {
			t.Fatalf("message %s carries %q, but Publish gave that id to %q", r.Message.ID, r.Message.Data, d)
		}
	}
}
