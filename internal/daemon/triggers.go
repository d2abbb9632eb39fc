package daemon

import (
	"context"
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/pubsub"
	"github.com/duct-dev/duct/internal/trigger"
)

// openTriggers opens the schedules' marks and the trigger manager, before
// the first function is applied: from then on every applied version has
// its triggers recorded. runTriggers starts firing them.
func (d *Daemon) openTriggers(ctx context.Context) error {
	marks, err := trigger.OpenMarks(ctx, d.broker.JS, d.broker.Replicas)
	if err != nil {
		return err
	}
	node, _ := os.Hostname()
	d.triggers = trigger.New(trigger.Config{Marks: marks, Active: d.activeVersions, Node: node, Logger: d.log})
	return nil
}

// runTriggers starts the schedules, the topic triggers' deliveries (on
// the Pub/Sub broker) and event ingestion, once the gateway runs them and
// the async queue takes what must be retried. They stop first at
// shutdown, before the broker and the queue.
func (d *Daemon) runTriggers() {
	var ps pubsub.Service
	if d.pubsub != nil {
		ps = d.pubsub
	}
	var q trigger.Queue
	if d.async != nil {
		q = d.async
	}
	d.triggers.Start(d.gateway, q, ps)
	d.undo = append(d.undo, d.triggers.Close)
}

// triggersApplied runs the triggers of v, now serving on this node.
func (d *Daemon) triggersApplied(ctx context.Context, v *duct.Version) {
	if d.triggers != nil {
		d.triggers.Apply(ctx, v)
	}
}

// triggersRemoved stops the triggers of a deleted function and deletes
// what the store keeps for them.
func (d *Daemon) triggersRemoved(name string) {
	if d.triggers == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.triggers.Remove(ctx, name)
}

// vetSpec judges a spec's triggers before a deploy builds anything.
func (d *Daemon) vetSpec(ctx context.Context, spec duct.Function) error {
	if d.triggers == nil {
		return nil
	}
	return d.triggers.Vet(ctx, spec)
}

// serveRoute serves a request an HTTP trigger routes to a function; it
// reports whether one did.
func (d *Daemon) serveRoute(w http.ResponseWriter, r *http.Request) bool {
	return d.triggers != nil && d.triggers.Routes().Serve(w, r, d.gateway.ServeFunction)
}

// activeVersions lists the serving version of every function in the
// store.
func (d *Daemon) activeVersions(ctx context.Context) ([]*duct.Version, error) {
	fns, err := d.store.Functions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*duct.Version, 0, len(fns))
	for _, f := range fns {
		_, v, err := d.store.ActiveVersion(ctx, f.Name)
		if errors.Is(err, duct.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, &v)
	}
	return out, nil
}

// Triggers is the node's trigger manager (for tests and benchmarks).
func (d *Daemon) Triggers() *trigger.Manager { return d.triggers }
