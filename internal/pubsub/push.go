package pubsub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// pushConcurrency bounds the POSTs in flight per push subscription per
// node (ordering keys still go one at a time).
const pushConcurrency = 16

// pushBody is Google's push request body ("wrapped" format). Message ids
// and publish times appear in both spellings, as Google sends them.
type pushBody struct {
	Message         pushMessage `json:"message"`
	Subscription    string      `json:"subscription"`
	DeliveryAttempt int         `json:"deliveryAttempt,omitempty"`
}

type pushMessage struct {
	Data        []byte            `json:"data,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	MessageID   string            `json:"messageId"`
	MessageID2  string            `json:"message_id"`
	PublishTime string            `json:"publishTime"`
	PublishTim2 string            `json:"publish_time"`
	OrderingKey string            `json:"orderingKey,omitempty"`
}

func (p *Broker) fullSubName(name string) string {
	return "projects/" + p.cfg.Project + "/subscriptions/" + name
}

func (s *subscriber) startPush() {
	ctx, cancel := context.WithCancel(s.p.ctx)
	s.mu.Lock()
	if s.pushStop != nil || s.gone {
		s.mu.Unlock()
		cancel()
		return
	}
	s.pushStop = cancel
	s.mu.Unlock()
	if !s.p.spawn(func() { s.pushLoop(ctx) }) {
		cancel()
	}
}

// pushLoop takes messages as POST slots free up and posts each: a 2xx
// answer acknowledges it, anything else (or no answer within the ack
// deadline) is a nack, retried after the retry policy's backoff
// (Google's push backoff, 100 ms to 60 s, without one).
func (s *subscriber) pushLoop(ctx context.Context) {
	slots := make(chan struct{}, pushConcurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		free := 1
		for len(slots) < cap(slots) {
			slots <- struct{}{}
			free++
		}
		got, err := s.take(ctx, free, 0, nil, 0, true)
		for range free - len(got) {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.p.log.Warn("pubsub: push", "subscription", s.name, "err", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
			continue
		}
		for _, r := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				s.pushOne(ctx, r)
			}()
		}
	}
}

func (s *subscriber) pushOne(ctx context.Context, r Received) {
	s.mu.Lock()
	endpoint, timeout := "", s.rec.AckDeadline
	if s.rec.Push != nil {
		endpoint = s.rec.Push.Endpoint
	}
	s.mu.Unlock()
	err := s.post(ctx, endpoint, timeout, r)
	if ctx.Err() != nil {
		return // stopping: the lease goes back with the rest
	}
	if err == nil {
		err = s.p.Acknowledge(ctx, s.name, []string{r.AckID})
	} else {
		s.p.log.Debug("pubsub: push failed", "subscription", s.name, "message", r.Message.ID, "err", err)
		err = s.p.ModifyAckDeadline(ctx, s.name, []string{r.AckID}, 0)
	}
	if err != nil && ctx.Err() == nil {
		s.p.log.Warn("pubsub: push: settle", "subscription", s.name, "err", err)
	}
}

func (s *subscriber) post(ctx context.Context, endpoint string, timeout time.Duration, r Received) error {
	if endpoint == "" {
		return fmt.Errorf("no push endpoint")
	}
	m := r.Message
	ts := m.PublishTime.UTC().Format(time.RFC3339Nano)
	body, err := json.Marshal(pushBody{
		Message: pushMessage{Data: m.Data, Attributes: m.Attributes, MessageID: m.ID, MessageID2: m.ID,
			PublishTime: ts, PublishTim2: ts, OrderingKey: m.OrderingKey},
		Subscription:    s.p.fullSubName(s.name),
		DeliveryAttempt: r.DeliveryAttempt,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Duct-PubSub-Push")
	resp, err := s.p.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", endpoint, resp.Status)
	}
	return nil
}
