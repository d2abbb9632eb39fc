package trigger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/duct-dev/duct"
)

// eventIndex maps CloudEvent types to the event triggers listening for
// them. It is immutable once built.
type eventIndex map[string][]eventRoute

type eventRoute struct {
	fn     string
	source string // "" matches any source
	prefix bool   // source ended with *: a prefix
}

func buildEvents(fns map[string][]duct.Trigger) eventIndex {
	idx := eventIndex{}
	for fn, ts := range fns {
		for _, t := range ts {
			if t.Event == nil {
				continue
			}
			src, prefix := strings.CutSuffix(t.Event.Source, "*")
			idx[t.Event.Type] = append(idx[t.Event.Type], eventRoute{fn: fn, source: src, prefix: prefix})
		}
	}
	return idx
}

// match returns the functions with an event trigger matching ev, sorted,
// each once: the type equal to the trigger's, and the source equal to
// the trigger's, or starting with it when the trigger's ends with *, or
// anything when the trigger names none.
func (idx eventIndex) match(ev *duct.CloudEvent) []string {
	var out []string
	for _, r := range idx[ev.Type] {
		switch {
		case r.source == "":
		case r.prefix && strings.HasPrefix(ev.Source, r.source):
		case !r.prefix && ev.Source == r.source:
		default:
			continue
		}
		out = append(out, r.fn)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Queued is one invocation an event was queued as.
type Queued struct {
	Function   string `json:"function"`
	Invocation string `json:"invocation"`
}

// Ingest queues ev as an asynchronous invocation of every function whose
// event trigger matches it, and returns them (none is not an error).
// hops is the hop count the event arrived with (X-Duct-Hops; 0 when
// none): each invocation carries one more. Events are deduplicated per
// function by (source, id), as the CloudEvents specification allows
// consumers to: the same event sent twice within the queue's idempotency
// window gets the first invocations back.
func (m *Manager) Ingest(ctx context.Context, ev *duct.CloudEvent, hops int) ([]Queued, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	if hops+1 > duct.MaxHops {
		return nil, fmt.Errorf("%w: this event would be hop %d of a chain of invocations (%s); at most %d are allowed",
			duct.ErrInvalid, hops+1, duct.HeaderHops, duct.MaxHops)
	}
	fns := m.events.Load().match(ev)
	out := make([]Queued, 0, len(fns))
	sum := sha256.Sum256([]byte(ev.Source + "\n" + ev.ID))
	key := "cloudevent:" + hex.EncodeToString(sum[:16])
	for _, fn := range fns {
		inv := eventInvocation(fn, ev, hops+1, key)
		qid, err := m.submit(ctx, inv)
		if err != nil {
			return out, fmt.Errorf("queue event for function %q: %w", fn, err)
		}
		out = append(out, Queued{Function: fn, Invocation: qid})
	}
	return out, nil
}

// submit queues inv: through the asynchronous queue (durable, retried),
// or, on a server without one, run at once in the background.
func (m *Manager) submit(ctx context.Context, inv *duct.QueuedInvocation) (string, error) {
	m.mu.Lock()
	q, r := m.queue, m.runner
	m.mu.Unlock()
	if q != nil {
		return q.Enqueue(ctx, inv)
	}
	if r == nil {
		return "", fmt.Errorf("%w: the server is starting", duct.ErrUnavailable)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if _, err := r.Attempt(m.work, &recorder{}, inv); err != nil && m.work.Err() == nil {
			m.log.Warn("trigger: invocation failed", "function", inv.Function, "invocation", inv.ID, "err", err)
		}
	}()
	return inv.ID, nil
}
