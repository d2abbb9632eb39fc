// Package broker owns Duct's connection to NATS JetStream, the one durable
// substrate: it starts an embedded nats-server (no listening port unless
// asked, fsync on every write) or connects to an external cluster.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says which NATS to use. The zero value is not usable: set DataDir
// for the embedded server or URL for an external one.
type Config struct {
	// URL lists external NATS servers ("nats://a:4222,nats://b:4222").
	// Empty means: embed a nats-server storing under DataDir.
	URL string
	// DataDir holds the embedded server's JetStream store (in "jetstream").
	DataDir string
	// Listen makes the embedded server accept clients on this address
	// (e.g. "127.0.0.1:4222") so other nodes or tools can join it. Empty
	// means no listening port: only this process reaches the broker.
	Listen string
	// NoSync turns off the fsync after every write. Faster, but an
	// acknowledged write may be lost to a machine crash. Embedded only.
	NoSync bool
	// Replicas for streams and buckets Duct creates on an external
	// cluster; 0 means 1.
	Replicas int
	// Logger receives the embedded server's notices and errors.
	Logger *slog.Logger
}

// Broker is a connected JetStream context.
type Broker struct {
	Conn     *nats.Conn
	JS       jetstream.JetStream
	Replicas int

	srv *server.Server // nil when external
	log *slog.Logger
}

// Open starts or connects to NATS and returns a ready Broker. On error
// nothing is left running.
func Open(ctx context.Context, cfg Config) (*Broker, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{log: log, Replicas: max(cfg.Replicas, 1)}
	opts := []nats.Option{
		nats.Name("duct"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	}
	if cfg.URL == "" {
		srv, err := startEmbedded(cfg, log)
		if err != nil {
			return nil, err
		}
		b.srv = srv
		opts = append(opts, nats.InProcessServer(srv))
	}
	url := cfg.URL
	if url == "" {
		url = "nats://in-process"
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("broker: connect %s: %w", redact(url), err)
	}
	b.Conn = nc
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("broker: jetstream: %w", err)
	}
	b.JS = js
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(actx); err != nil {
		b.Close()
		return nil, fmt.Errorf("broker: jetstream not available on %s: %w", redact(url), err)
	}
	return b, nil
}

func startEmbedded(cfg Config, log *slog.Logger) (*server.Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("broker: embedded server needs a data dir")
	}
	store := filepath.Join(cfg.DataDir, "jetstream")
	if err := os.MkdirAll(store, 0o700); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	opts := &server.Options{
		ServerName:         "duct",
		JetStream:          true,
		StoreDir:           store,
		SyncAlways:         !cfg.NoSync,
		NoSigs:             true,
		DontListen:         cfg.Listen == "",
		MaxPayload:         16 << 20,
		JetStreamMaxMemory: 256 << 20,
		NoSystemAccount:    true,
	}
	if cfg.Listen != "" {
		host, port, err := splitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("broker: listen %q: %w", cfg.Listen, err)
		}
		opts.Host, opts.Port = host, port
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: embedded nats: %w", err)
	}
	srv.SetLoggerV2(&logAdapter{log: log.With("component", "nats")}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("broker: embedded nats did not become ready (store %s)", store)
	}
	return srv, nil
}

// Embedded reports whether this broker runs its own nats-server.
func (b *Broker) Embedded() bool { return b.srv != nil }

// ClientURL is the address other processes use to reach an embedded
// server that listens; empty otherwise.
func (b *Broker) ClientURL() string {
	if b.srv == nil || b.srv.Addr() == nil {
		return ""
	}
	return b.srv.ClientURL()
}

// Close drains the connection and stops an embedded server.
func (b *Broker) Close() error {
	if b.Conn != nil {
		b.Conn.Close()
	}
	b.shutdownServer()
	return nil
}

func (b *Broker) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		b.srv = nil
	}
}

func redact(url string) string {
	// Drop user:password@ from URLs before they reach a log or an error.
	parts := strings.Split(url, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "***" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
