package pubsub

import (
	"context"
	"maps"
	"strconv"
	"time"
)

// deadLetter is a message to forward to its subscription's dead-letter
// topic, then acknowledge.
type deadLetter struct {
	id       ackID
	cons     consumer
	msg      Message
	attempts uint64
}

// deadLetterRetry spaces attempts to forward a message whose dead-letter
// topic refuses it (deleted, say).
const deadLetterRetry = time.Minute

// deadLetter forwards d with Google's attributes saying where it came
// from, then acknowledges the original. If the forward fails, the
// original goes back to be tried again later: dead-lettering never
// loses a message, though it may forward one twice.
func (p *Broker) deadLetter(s *subscriber, d deadLetter) {
	s.mu.Lock()
	dl := s.rec.DeadLetter
	s.mu.Unlock()
	var o ops
	if dl == nil {
		o.nak(d.cons, d.id, 0) // the policy went away meanwhile
		s.run(o)
		return
	}
	attrs := make(map[string]string, len(d.msg.Attributes)+4)
	maps.Copy(attrs, d.msg.Attributes)
	attrs[DeadLetterSourceKey] = p.fullSubName(s.name)
	attrs[DeadLetterProjectKey] = p.cfg.Project
	attrs[DeadLetterCountKey] = strconv.FormatUint(d.attempts, 10)
	attrs[DeadLetterTimeKey] = d.msg.PublishTime.UTC().Format(time.RFC3339Nano)
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	_, err := p.publish(ctx, dl.Topic, []Message{{Data: d.msg.Data, Attributes: attrs, OrderingKey: d.msg.OrderingKey}})
	if err != nil {
		p.log.Warn("pubsub: dead-letter", "subscription", s.name, "topic", dl.Topic, "message", d.msg.ID, "err", err)
		o.nak(d.cons, d.id, deadLetterRetry)
	} else {
		o.ack(d.cons, d.id)
	}
	s.run(o)
}
