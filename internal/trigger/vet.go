package trigger

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/pubsub"
)

// Vet judges spec's triggers as this server sees them, beyond what
// spec.Validate checks alone: cron specs parse and tick, topic filters
// parse, there is a Pub/Sub broker for topic triggers, and no HTTP route
// is another function's. Errors name the trigger and match
// duct.ErrInvalid, or duct.ErrConflict for a route held elsewhere.
func (m *Manager) Vet(ctx context.Context, spec duct.Function) error {
	for i, t := range spec.Triggers {
		field := fmt.Sprintf("triggers[%d]", i)
		switch {
		case t.Schedule != nil:
			if _, err := ParseSchedule(t.Schedule.Cron, t.Schedule.Timezone); err != nil {
				return relabel(err, field+".schedule")
			}
		case t.Topic != nil:
			m.mu.Lock()
			ps := m.ps
			m.mu.Unlock()
			if ps == nil {
				return duct.Invalid(field+".topic", "this server has no Pub/Sub broker")
			}
			if _, err := pubsub.ParseFilter(t.Topic.Filter); err != nil {
				return relabel(err, field+".topic")
			}
		case t.HTTP != nil:
			if other := m.routeHolder(spec.Name, t.HTTP); other != "" {
				return fmt.Errorf("%s.http: %s %s is served by function %q: remove it there first, or choose another path: %w",
					field, methodList(t.HTTP.Methods), t.HTTP.Path, other, duct.ErrConflict)
			}
		}
	}
	return nil
}

// routeHolder returns the function other than fn that serves h's path
// for one of its methods, or "".
func (m *Manager) routeHolder(fn string, h *duct.HTTPTrigger) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var holders []string
	for other, st := range m.fns {
		if other == fn {
			continue
		}
		for _, u := range st.triggers {
			if u.HTTP != nil && u.HTTP.Path == h.Path && duct.MethodsOverlap(u.HTTP.Methods, h.Methods) {
				holders = append(holders, other)
			}
		}
	}
	if len(holders) == 0 {
		return ""
	}
	return slices.Min(holders)
}

// relabel puts an invalid error under field: "invalid cron: …" becomes
// "invalid triggers[2].schedule.cron: …".
func relabel(err error, field string) error {
	var ie *duct.InvalidError
	if errors.As(err, &ie) {
		f := field
		if ie.Field != "" {
			f += "." + ie.Field
		}
		return &duct.InvalidError{Field: f, Reason: ie.Reason}
	}
	return fmt.Errorf("%s: %w", field, err)
}

// Describe lists the triggers ts of function fn with what this server
// knows of them: ids, a schedule's next and last ticks, a topic
// trigger's subscription.
func (m *Manager) Describe(ctx context.Context, fn string, ts []duct.Trigger) []duct.TriggerInfo {
	out := make([]duct.TriggerInfo, 0, len(ts))
	now := m.cfg.Clock.Now()
	for i, t := range ts {
		info := duct.TriggerInfo{Index: i, ID: t.ID(), Kind: t.Kind(), Trigger: t}
		switch {
		case t.Schedule != nil:
			info.Active = true
			if s, err := ParseSchedule(t.Schedule.Cron, t.Schedule.Timezone); err == nil {
				if n := s.Next(now); !n.IsZero() {
					info.Next = &n
				}
			}
			if mk, _, err := m.cfg.Marks.Get(ctx, fn, info.ID); err == nil && (mk.Invocation != "" || !mk.Fired) {
				last := mk.Tick.In(now.Location())
				if s, err := duct.ScheduleLocation(t.Schedule.Timezone); err == nil {
					last = mk.Tick.In(s)
				}
				info.LastTick, info.LastInvocation = &last, mk.Invocation
			}
		case t.Topic != nil:
			m.mu.Lock()
			info.Active = m.ps != nil
			m.mu.Unlock()
			info.Subscription = SubscriptionName(fn, info.ID)
		case t.HTTP != nil, t.Event != nil:
			info.Active = true
		}
		out = append(out, info)
	}
	return out
}
