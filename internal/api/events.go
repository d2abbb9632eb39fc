package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/trigger"
)

// Triggers is the trigger machinery the API consults.
type Triggers interface {
	// Vet judges a spec's triggers against the server's state (cron
	// specs, filters, HTTP routes held by other functions).
	Vet(ctx context.Context, spec duct.Function) error
	// Describe lists a function's triggers with their ids and state.
	Describe(ctx context.Context, fn string, ts []duct.Trigger) []duct.TriggerInfo
	// Ingest queues an event for every function whose event trigger
	// matches it; hops is the count it arrived with.
	Ingest(ctx context.Context, ev *duct.CloudEvent, hops int) ([]trigger.Queued, error)
}

var errNoTriggers = fmt.Errorf("%w: this server runs no triggers", duct.ErrUnavailable)

func (a *API) eventRoutes() {
	a.route("POST /api/v1/events", duct.PermInvoke, a.ingest)
	a.route("GET /api/v1/functions/{name}/triggers", duct.PermRead, a.listTriggers)
	a.route("PUT /api/v1/functions/{name}/triggers", duct.PermDeploy, a.setTriggers)
}

// EventsAccepted answers POST /api/v1/events: for each event received
// (one, or a batch's), the invocations it was queued as.
type EventsAccepted struct {
	Events []EventAccepted `json:"events"`
}

// EventAccepted is one event taken in.
type EventAccepted struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Type   string `json:"type"`
	// Invocations lists one invocation per function whose event trigger
	// matches; empty when none does.
	Invocations []QueuedEvent `json:"invocations"`
}

// QueuedEvent is an invocation an event was queued as.
type QueuedEvent struct {
	Function   string `json:"function"`
	Invocation string `json:"invocation"`
	// Location is where its record is read.
	Location string `json:"location"`
}

// maxEventBody bounds the body of POST /api/v1/events: an event's data
// may take what an asynchronous invocation's body may, plus its
// attributes.
const maxEventBody = int64(duct.MaxAsyncBody) + 64<<10

// ingest takes CloudEvents in binary, structured or batch mode, and
// queues each for the functions whose event triggers match it.
func (a *API) ingest(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Triggers == nil {
		return errNoTriggers
	}
	if r.ContentLength > maxEventBody {
		return fmt.Errorf("an event of %d bytes: at most %d: %w", r.ContentLength, maxEventBody, duct.ErrTooLarge)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxEventBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("an event larger than %d bytes: %w", maxEventBody, duct.ErrTooLarge)
		}
		return duct.Invalid("body", "%v", err)
	}
	hops := 0
	if v := r.Header.Values(duct.HeaderHops); len(v) > 0 {
		n, err := strconv.Atoi(strings.TrimSpace(v[0]))
		if len(v) > 1 || err != nil || n < 0 {
			return duct.Invalid(duct.HeaderHops, "want one non-negative integer")
		}
		// Past the limit the count only needs to stay past it: cap it so
		// hops+1 cannot overflow.
		hops = min(n, duct.MaxHops+1)
	}
	evs, err := trigger.ReadHTTP(r.Header, body)
	if err != nil {
		return err
	}
	out := EventsAccepted{Events: make([]EventAccepted, 0, len(evs))}
	for i := range evs {
		ev := &evs[i]
		qs, err := a.cfg.Triggers.Ingest(r.Context(), ev, hops)
		if err != nil {
			if len(evs) > 1 {
				err = fmt.Errorf("event %d (%s from %s): %w; send the batch again: the events taken are not queued twice", i, ev.ID, ev.Source, err)
			}
			return err
		}
		acc := EventAccepted{ID: ev.ID, Source: ev.Source, Type: ev.Type, Invocations: make([]QueuedEvent, 0, len(qs))}
		for _, q := range qs {
			acc.Invocations = append(acc.Invocations, QueuedEvent{Function: q.Function, Invocation: q.Invocation,
				Location: "/api/v1/invocations/" + q.Invocation})
		}
		out.Events = append(out.Events, acc)
	}
	return writeJSON(w, http.StatusAccepted, out)
}

// FunctionTriggers is a function's triggers, as GET and PUT
// /api/v1/functions/{name}/triggers answer.
type FunctionTriggers struct {
	// Version is the version the triggers belong to: the serving one.
	Version  int                `json:"version"`
	Triggers []duct.TriggerInfo `json:"triggers"`
	// Unchanged is set on a PUT that changed nothing: no version was
	// made.
	Unchanged bool `json:"unchanged,omitempty"`
}

// TriggersRequest replaces a function's triggers (PUT).
type TriggersRequest struct {
	Triggers []duct.Trigger `json:"triggers"`
	// Version, when set, is the serving version the change was made
	// from; the request fails with 409 if another serves by now.
	Version int `json:"version,omitempty"`
}

func (a *API) listTriggers(w http.ResponseWriter, r *http.Request) error {
	n, err := name(r)
	if err != nil {
		return err
	}
	_, v, err := a.cfg.Store.ActiveVersion(r.Context(), n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.functionTriggers(r.Context(), &v))
}

func (a *API) functionTriggers(ctx context.Context, v *duct.Version) FunctionTriggers {
	ft := FunctionTriggers{Version: v.Number, Triggers: []duct.TriggerInfo{}}
	if a.cfg.Triggers != nil {
		ft.Triggers = a.cfg.Triggers.Describe(ctx, v.Function, v.Spec.Triggers)
		return ft
	}
	for i, t := range v.Spec.Triggers {
		ft.Triggers = append(ft.Triggers, duct.TriggerInfo{Index: i, ID: t.ID(), Kind: t.Kind(), Trigger: t})
	}
	return ft
}

// setTriggers replaces the serving version's triggers: a new version
// with the same artifact and the new list, as a deploy of the same
// source with a changed duct.yaml would make, without a build or a start
// check (triggers do not change how an instance starts).
func (a *API) setTriggers(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Triggers == nil {
		return errNoTriggers
	}
	n, err := name(r)
	if err != nil {
		return err
	}
	var req TriggersRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	_, cur, err := a.cfg.Store.ActiveVersion(ctx, n)
	if err != nil {
		return err
	}
	if req.Version != 0 && req.Version != cur.Number {
		return fmt.Errorf("function %q: version %d serves now, not %d: read its triggers again: %w", n, cur.Number, req.Version, duct.ErrConflict)
	}
	if len(req.Triggers) == 0 {
		req.Triggers = nil
	}
	spec := cur.Spec
	spec.Triggers = req.Triggers
	if same(cur.Spec.Triggers, spec.Triggers) {
		ft := a.functionTriggers(ctx, &cur)
		ft.Unchanged = true
		return writeJSON(w, http.StatusOK, ft)
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	if err := a.cfg.Triggers.Vet(ctx, spec); err != nil {
		return err
	}
	next := cur
	next.Spec, next.Number, next.Cached, next.BuildDuration = spec, 0, true, 0
	nv, err := a.cfg.Store.AddVersion(ctx, next)
	if err != nil {
		return err
	}
	if a.cfg.Applied != nil {
		if err := a.cfg.Applied(ctx, n); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusCreated, a.functionTriggers(ctx, &nv))
}

func same(a, b []duct.Trigger) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
