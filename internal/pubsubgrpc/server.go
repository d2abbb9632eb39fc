// Package pubsubgrpc serves Google Cloud Pub/Sub's gRPC API, the
// google.pubsub.v1 Publisher and Subscriber services, on top of
// pubsub.Service, so that Google's client libraries (pointed at Duct with
// PUBSUB_EMULATOR_HOST) work against Duct unchanged. It translates names,
// messages and settings between the protocol and the broker, and the
// broker's errors into the codes Google's service answers. Snapshots,
// detaching, exactly-once delivery and export subscriptions answer
// UNIMPLEMENTED.
package pubsubgrpc

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/pubsub"
)

// maxGRPCMessage bounds a request or response on the wire: a 10 MB
// message and its request around it fit, as with Google's service and
// clients (which allow 20 MB).
const maxGRPCMessage = 20 << 20

// Config wires a Server.
type Config struct {
	// Service is the broker.
	Service pubsub.Service
	// Auth, when set, requires every call to carry a Duct API token in
	// its "authorization" metadata ("Bearer TOKEN") whose role allows the
	// call. Nil accepts every call: the emulator protocol that clients
	// speak to PUBSUB_EMULATOR_HOST carries no credentials.
	Auth   duct.Authenticator
	Logger *slog.Logger
}

// Server is the gRPC server. Start it with Serve and stop it with
// Shutdown.
type Server struct {
	svc  pubsub.Service
	auth duct.Authenticator
	log  *slog.Logger
	grpc *grpc.Server
	// stopCtx ends when Shutdown begins: streaming pulls and waiting
	// pulls end then with UNAVAILABLE.
	stopCtx context.Context
	stop    context.CancelFunc
}

// New returns a server for cfg.Service.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: cfg.Service, auth: cfg.Auth, log: cfg.Logger}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(maxGRPCMessage),
		grpc.MaxSendMsgSize(maxGRPCMessage),
		// Google's clients ping idle connections every few minutes;
		// tolerate any client that pings every 10 s or less often.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(s.unary),
		grpc.ChainStreamInterceptor(s.stream),
	)
	pb.RegisterPublisherServer(s.grpc, publisher{s})
	pb.RegisterSubscriberServer(s.grpc, subscriber{s})
	return s
}

// Serve accepts connections on ln until Shutdown. It returns nil after a
// shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.grpc.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Shutdown ends streaming and waiting pulls with UNAVAILABLE (clients
// reconnect), lets other calls finish until ctx ends, then closes every
// connection.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		return ctx.Err()
	}
}

// untilStopping returns a context that also ends, with errStopping as its
// cause, when Shutdown begins.
func (s *Server) untilStopping(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.stopCtx, func() { cancel(errStopping) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// unary checks the caller's token and turns a handler's error into a
// status.
func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	resp, err := h(ctx, req)
	if err != nil {
		return nil, s.toStatus(ctx, info.FullMethod, err)
	}
	return resp, nil
}

func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return s.toStatus(ss.Context(), info.FullMethod, h(srv, ss))
}

// publisher serves google.pubsub.v1.Publisher.
type publisher struct{ s *Server }

// subscriber serves google.pubsub.v1.Subscriber.
type subscriber struct{ s *Server }
