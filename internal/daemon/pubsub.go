package daemon

import (
	"context"
	"fmt"
	"net"

	"github.com/duct-dev/duct/internal/pubsub"
	"github.com/duct-dev/duct/internal/pubsubgrpc"
)

// startPubSub opens the message broker on the daemon's JetStream: topics,
// subscriptions and their deliveries.
func (d *Daemon) startPubSub(ctx context.Context) error {
	var err error
	if d.pubsub, err = pubsub.New(ctx, d.broker, pubsub.Config{Logger: d.log}); err != nil {
		return fmt.Errorf("pubsub: %w", err)
	}
	d.undo = append(d.undo, d.pubsub.Close)
	return nil
}

// servePubSub serves Google Cloud Pub/Sub's gRPC API on PubSubAddr, when
// set. It stops before the broker closes: its streams end with
// UNAVAILABLE, and clients reconnect.
func (d *Daemon) servePubSub() error {
	if d.cfg.PubSubAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", d.cfg.PubSubAddr)
	if err != nil {
		return fmt.Errorf("pubsub listen: %w", err)
	}
	d.pubsubLn = ln
	cfg := pubsubgrpc.Config{Service: d.pubsub, Logger: d.log}
	note := "it takes no credentials: keep it on a trusted network"
	if d.cfg.PubSubAuth {
		cfg.Auth, note = d.auth, "calls need an API token"
	}
	srv := pubsubgrpc.New(cfg)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := srv.Serve(ln); err != nil {
			d.log.Error("pubsub grpc server", "err", err)
		}
	}()
	d.undo = append(d.undo, func() {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
		defer cancel()
		srv.Shutdown(ctx)
	})
	d.log.Info("serving Google Cloud Pub/Sub's gRPC API: "+note,
		"addr", ln.Addr().String(), "clients", "PUBSUB_EMULATOR_HOST="+ln.Addr().String())
	return nil
}

// PubSubAddr is the address of the Pub/Sub gRPC API, empty when the
// server does not serve it.
func (d *Daemon) PubSubAddr() string {
	if d.pubsubLn == nil {
		return ""
	}
	return d.pubsubLn.Addr().String()
}

// PubSub is this node's Pub/Sub broker.
func (d *Daemon) PubSub() pubsub.Service { return d.pubsub }
