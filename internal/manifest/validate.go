package manifest

import (
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/duct-dev/duct"
)

// validate rejects values no function could take, each at its line.
// Rules that concern one field come from duct.Function.Validate itself:
// the field is laid, alone, over a function known to be valid. That
// checks a given zero too (`concurrency: 0`), which Apply would otherwise
// pass on as "not set" and WithDefaults would quietly replace. Rules
// between fields wait for the caller's final Validate, since flags may
// still override either side; only a file that contradicts itself
// (minInstances above its own maxInstances) is refused here.
func (m *Manifest) validate(lines map[string]int) error {
	at := func(path string, err error) error {
		var ie *duct.InvalidError
		if errors.As(err, &ie) {
			return errAt(lines[path], path, "%s", ie.Reason)
		}
		return errAt(lines[path], path, "%v", err)
	}
	probe := func(path string, set func(*duct.Function)) error {
		f := duct.Function{Name: "probe", Runtime: duct.RuntimeGo}.WithDefaults()
		set(&f)
		if err := f.Validate(); err != nil {
			return at(path, err)
		}
		return nil
	}
	probes := []struct {
		path  string
		given bool
		set   func(*duct.Function)
	}{
		{"name", m.Name != nil, func(f *duct.Function) { f.Name = *m.Name }},
		{"runtime", m.Runtime != nil, func(f *duct.Function) { f.Runtime = *m.Runtime }},
		{"signature", m.Signature != nil, func(f *duct.Function) { f.Signature = *m.Signature }},
		{"handler", m.Handler != nil, func(f *duct.Function) { f.Handler = *m.Handler }},
		{"entry", m.Entry != nil, func(f *duct.Function) { f.Entry = *m.Entry }},
		// command is checked as an image's: which runtime it goes with is a
		// cross-field rule left to the final validation.
		{"command", m.Command != nil, func(f *duct.Function) { f.Runtime, f.Command = duct.RuntimeImage, m.Command }},
		{"timeout", m.Timeout != nil, func(f *duct.Function) { f.Timeout = *m.Timeout }},
		{"memory", m.Memory != nil, func(f *duct.Function) { f.Memory = *m.Memory }},
		{"concurrency", m.Concurrency != nil, func(f *duct.Function) { f.Concurrency = *m.Concurrency }},
		{"maxInstances", m.MaxInstances != nil, func(f *duct.Function) { f.MaxInstances = *m.MaxInstances }},
		{"idleTimeout", m.IdleTimeout != nil, func(f *duct.Function) { f.IdleTimeout = *m.IdleTimeout }},
		{"invoke", m.Invoke != nil, func(f *duct.Function) { f.Invoke = *m.Invoke }},
		{"network", m.Network != nil, func(f *duct.Function) { f.Network = *m.Network }},
	}
	for _, p := range probes {
		if !p.given {
			continue
		}
		if err := probe(p.path, p.set); err != nil {
			return err
		}
	}
	// Validate lets these through as "not set"; here they were given.
	switch {
	case m.Entry != nil && *m.Entry == "":
		return errAt(lines["entry"], "entry", `"": leave the field out to detect the entry file`)
	case m.Command != nil && len(m.Command) == 0:
		return errAt(lines["command"], "command", "empty list: want the program and its arguments")
	}
	if m.MinInstances != nil {
		switch n := *m.MinInstances; {
		case n < 0:
			return errAt(lines["minInstances"], "minInstances", "%d: want 0 or more", n)
		case m.MaxInstances != nil && n > *m.MaxInstances:
			return errAt(lines["minInstances"], "minInstances", "%d: want at most maxInstances (%d)", n, *m.MaxInstances)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.Env)) {
		if err := probe("env."+k, func(f *duct.Function) { f.Env = map[string]string{k: m.Env[k]} }); err != nil {
			return err
		}
	}
	for i, s := range m.Secrets {
		if err := probe(index("secrets", i), func(f *duct.Function) { f.Secrets = []string{s} }); err != nil {
			return err
		}
	}
	for i, t := range m.Triggers {
		if err := checkTrigger(t); err != "" {
			return errAt(lines[index("triggers", i)], index("triggers", i), "%s", err)
		}
		// The trigger's own rules, then those between triggers.
		f := duct.Function{Name: "probe", Runtime: duct.RuntimeGo, Triggers: []duct.Trigger{t}}.WithDefaults()
		if err := f.Validate(); err != nil {
			var ie *duct.InvalidError
			if errors.As(err, &ie) {
				return errAt(lines[index("triggers", i)], index("triggers", i)+strings.TrimPrefix(ie.Field, "triggers[0]"), "%s", ie.Reason)
			}
			return at(index("triggers", i), err)
		}
	}
	if err := probe("triggers", func(f *duct.Function) { f.Triggers = m.Triggers }); err != nil {
		return err
	}
	return m.Retry.validate(lines)
}

// checkTrigger checks that a trigger names what it listens to. The
// trigger sources judge the values (cron syntax, filters).
func checkTrigger(t duct.Trigger) string {
	var kind, field, value string
	switch {
	case t.HTTP != nil:
		kind, field, value = "http", "path", t.HTTP.Path
	case t.Topic != nil:
		kind, field, value = "topic", "name", t.Topic.Name
	case t.Schedule != nil:
		kind, field, value = "schedule", "cron", t.Schedule.Cron
	case t.Bucket != nil:
		kind, field, value = "bucket", "name", t.Bucket.Name
	case t.KV != nil:
		kind, field, value = "kv", "bucket", t.KV.Bucket
	case t.Event != nil:
		kind, field, value = "event", "type", t.Event.Type
	default:
		return "no kind: want one of " + joinList(triggerKinds)
	}
	if value == "" {
		return kind + ": " + field + " is required"
	}
	return ""
}

func (r *Retry) validate(lines map[string]int) error {
	switch {
	case r == nil:
		return nil
	case r.Attempts != nil && *r.Attempts < 0:
		return errAt(lines["retry.attempts"], "retry.attempts", "%d: want 0 or more", *r.Attempts)
	case r.MaxEventAge != nil && *r.MaxEventAge <= 0:
		return errAt(lines["retry.maxEventAge"], "retry.maxEventAge", "%s: want more than 0 (leave the field out for the default)", *r.MaxEventAge)
	}
	return nil
}
