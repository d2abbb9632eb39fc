package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/duct-dev/duct"
)

// Invocations reads the records of asynchronous invocations.
type Invocations interface {
	// Invocation returns the record of invocation id: duct.ErrNotFound
	// when there is none (never, or expired), duct.ErrInvalid for an id
	// that cannot be one.
	Invocation(ctx context.Context, id string) (duct.Invocation, error)
}

func (a *API) invocationRoutes() {
	a.route("GET /api/v1/invocations/{id}", duct.PermRead, a.getInvocation)
}

// getInvocation answers an invocation's record: GET /api/v1/invocations/{id},
// the Location of a 202 from the gateway.
func (a *API) getInvocation(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Invocations == nil {
		return fmt.Errorf("%w: this server does not run asynchronous invocations", duct.ErrUnavailable)
	}
	inv, err := a.cfg.Invocations.Invocation(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !inv.Status.Final() {
		w.Header().Set("Cache-Control", "no-store")
	}
	return writeJSON(w, http.StatusOK, inv)
}
