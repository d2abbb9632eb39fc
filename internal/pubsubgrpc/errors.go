package pubsubgrpc

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duct-dev/duct"
)

// errStopping ends calls that would outlast the server: clients retry
// UNAVAILABLE, on this server when it comes back or on another.
var errStopping = status.Error(codes.Unavailable, "the Duct server is shutting down")

// code maps an error of the broker to the gRPC code Google's service
// answers for the same condition.
func code(err error) codes.Code {
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, duct.ErrTimeout):
		return codes.DeadlineExceeded
	case errors.Is(err, duct.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, duct.ErrConflict):
		return codes.AlreadyExists
	case errors.Is(err, duct.ErrInvalid), errors.Is(err, duct.ErrTooLarge):
		// Google answers INVALID_ARGUMENT for oversized messages and
		// requests too ("Request payload size exceeds the limit").
		return codes.InvalidArgument
	case errors.Is(err, duct.ErrOverloaded):
		return codes.ResourceExhausted
	case errors.Is(err, duct.ErrUnavailable), errors.Is(err, duct.ErrShuttingDown):
		return codes.Unavailable
	case errors.Is(err, duct.ErrUnauthorized):
		return codes.Unauthenticated
	case errors.Is(err, duct.ErrForbidden):
		return codes.PermissionDenied
	}
	return codes.Internal
}

// toStatus turns an error a handler returned into a gRPC status error.
// The detail of an internal error goes to the log, not to the client.
func (s *Server) toStatus(ctx context.Context, method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	c := code(err)
	if c == codes.Internal {
		s.log.ErrorContext(ctx, "pubsub grpc", "method", method, "err", err)
		return status.Error(c, "internal error; see the Duct server's log")
	}
	return status.Error(c, err.Error())
}
