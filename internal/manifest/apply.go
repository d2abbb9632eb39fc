package manifest

import (
	"maps"
	"slices"

	"github.com/duct-dev/duct"
)

// Apply returns f with every field the manifest gave laid over it. Lists
// and maps replace f's whole (`env` is the environment, not additions to
// it); the retry block overlays field by field. The result shares no
// memory with m or with f's retry policy. A nil Manifest gives f.
func (m *Manifest) Apply(f duct.Function) duct.Function {
	if m == nil {
		return f
	}
	set(&f.Name, m.Name)
	set(&f.Runtime, m.Runtime)
	set(&f.Signature, m.Signature)
	set(&f.Handler, m.Handler)
	set(&f.Entry, m.Entry)
	set(&f.Timeout, m.Timeout)
	set(&f.Memory, m.Memory)
	set(&f.Concurrency, m.Concurrency)
	set(&f.MinInstances, m.MinInstances)
	set(&f.MaxInstances, m.MaxInstances)
	set(&f.IdleTimeout, m.IdleTimeout)
	set(&f.Invoke, m.Invoke)
	set(&f.Network, m.Network)
	if m.Command != nil {
		f.Command = slices.Clone(m.Command)
	}
	if m.Env != nil {
		f.Env = maps.Clone(m.Env)
	}
	if m.Secrets != nil {
		f.Secrets = slices.Clone(m.Secrets)
	}
	if m.Triggers != nil {
		f.Triggers = make([]duct.Trigger, len(m.Triggers))
		for i, t := range m.Triggers {
			f.Triggers[i] = cloneTrigger(t)
		}
	}
	if r := m.Retry; r != nil {
		var p duct.RetryPolicy
		if f.Retry != nil {
			p = *f.Retry
		}
		if r.Attempts != nil {
			p.Attempts = r.Attempts
		}
		if p.Attempts != nil {
			n := *p.Attempts
			p.Attempts = &n
		}
		set(&p.MaxEventAge, r.MaxEventAge)
		set(&p.OnFailure, r.OnFailure)
		set(&p.OnSuccess, r.OnSuccess)
		f.Retry = &p
	}
	return f
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func cloneTrigger(t duct.Trigger) duct.Trigger {
	t.HTTP = clonePtr(t.HTTP)
	if t.HTTP != nil {
		t.HTTP.Methods = slices.Clone(t.HTTP.Methods)
	}
	t.Topic = clonePtr(t.Topic)
	t.Schedule = clonePtr(t.Schedule)
	t.Bucket = clonePtr(t.Bucket)
	if t.Bucket != nil {
		t.Bucket.Events = slices.Clone(t.Bucket.Events)
	}
	t.KV = clonePtr(t.KV)
	t.Event = clonePtr(t.Event)
	return t
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
