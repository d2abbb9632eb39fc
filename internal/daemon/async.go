package daemon

import (
	"context"
	"fmt"

	"github.com/duct-dev/duct/internal/async"
	"github.com/duct-dev/duct/internal/pubsub"
)

// openAsync opens the queue of asynchronous invocations, so that the
// gateway can queue and the API read them; startAsync, once the gateway
// and the Pub/Sub broker (for destination topics) exist, starts running
// them.
func (d *Daemon) openAsync(ctx context.Context) error {
	svc, err := async.Open(ctx, async.Config{Broker: d.broker, Logs: d.logs, Tuning: d.cfg.Async, Logger: d.log})
	if err != nil {
		return err
	}
	d.async = svc
	d.undo = append(d.undo, svc.Close)
	return nil
}

func (d *Daemon) startAsync() {
	var topics async.Publisher
	if d.pubsub != nil {
		topics = topicPublisher{d.pubsub}
	}
	d.async.Start(d.gateway, topics)
}

// topicPublisher publishes the outcomes of asynchronous invocations to
// Pub/Sub topics.
type topicPublisher struct{ ps pubsub.Service }

func (p topicPublisher) Publish(ctx context.Context, topic string, data []byte, attrs map[string]string) (string, error) {
	ids, err := p.ps.Publish(ctx, topic, []pubsub.Message{{Data: data, Attributes: attrs}})
	if err != nil {
		return "", err
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("publish to %q: %d ids for one message", topic, len(ids))
	}
	return ids[0], nil
}
