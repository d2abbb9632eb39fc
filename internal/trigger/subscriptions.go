package trigger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/pubsub"
)

// topicLocked makes sure topic trigger id of fn has its subscription and
// a dispatcher on this node reading it with spec.
func (m *Manager) topicLocked(ctx context.Context, fn, id string, t *duct.TopicTrigger, spec *duct.Function) {
	want := subscriptionFor(fn, id, t, spec)
	if err := m.ensure(ctx, want); err != nil {
		m.log.Error("topic trigger: cannot create its subscription; its dispatcher will try again",
			"function", fn, "subscription", want.Name, "err", err)
	}
	d := m.disp[want.Name]
	if d == nil {
		d = &dispatcher{ps: m.ps, log: m.log, fn: fn, id: id, topic: t.Name, filter: t.Filter, sub: want.Name, observe: m.observe}
		d.spec.Store(spec)
		m.disp[want.Name] = d
		if m.started {
			m.startLocked(d)
		}
		return
	}
	d.spec.Store(spec)
}

// startLocked starts a dispatcher: m has started.
func (m *Manager) startLocked(d *dispatcher) {
	d.runner = m.runner
	ctx, cancel := context.WithCancel(m.ctx)
	d.cancel, d.done = cancel, make(chan struct{})
	d.work, d.stopWork = context.WithCancel(m.work)
	d.ensure = func(ctx context.Context) error {
		return m.ensure(ctx, subscriptionFor(d.fn, d.id, &duct.TopicTrigger{Name: d.topic, Filter: d.filter}, d.spec.Load()))
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		d.run(ctx)
	}()
}

// dropTopicLocked stops this node's dispatcher of a topic trigger and
// deletes its subscription.
func (m *Manager) dropTopicLocked(ctx context.Context, fn, id string) {
	name := SubscriptionName(fn, id)
	if d := m.disp[name]; d != nil {
		delete(m.disp, name)
		if d.cancel != nil {
			d.cancel()
			d.stopWork() // the trigger is gone: deliveries under way too
			<-d.done
		}
	}
	if err := m.ps.DeleteSubscription(ctx, name); err != nil && !errors.Is(err, duct.ErrNotFound) {
		m.log.Warn("topic trigger: cannot delete its subscription", "function", fn, "subscription", name, "err", err)
	}
}

// ensure makes the subscription want exist with want's settings,
// creating the topics it names when they do not exist (as gcloud
// functions deploy --trigger-topic does).
func (m *Manager) ensure(ctx context.Context, want pubsub.Subscription) error {
	ps := m.ps
	topics := []string{want.Topic}
	if want.DeadLetter != nil {
		topics = append(topics, want.DeadLetter.Topic)
	}
	for _, name := range topics {
		_, err := ps.GetTopic(ctx, name)
		if errors.Is(err, duct.ErrNotFound) {
			_, err = ps.CreateTopic(ctx, pubsub.Topic{Name: name})
			if err == nil {
				m.log.Info("topic trigger: created the topic it names", "topic", name, "function", want.Labels[LabelFunction])
			}
		}
		if err != nil && !errors.Is(err, duct.ErrConflict) {
			return fmt.Errorf("topic %q: %w", name, err)
		}
	}
	got, err := ps.GetSubscription(ctx, want.Name)
	switch {
	case errors.Is(err, duct.ErrNotFound):
		_, err = ps.CreateSubscription(ctx, want)
		if errors.Is(err, duct.ErrConflict) {
			return nil // another node made it
		}
		return err
	case err != nil:
		return err
	case got.Topic != want.Topic || got.Filter != want.Filter:
		// Its topic was deleted (and maybe made again), or someone
		// changed what cannot change: start afresh.
		m.log.Warn("topic trigger: its subscription no longer reads the topic; making it again", "subscription", want.Name,
			"topic", want.Topic, "reads", got.Topic)
		if err := ps.DeleteSubscription(ctx, want.Name); err != nil && !errors.Is(err, duct.ErrNotFound) {
			return err
		}
		_, err = ps.CreateSubscription(ctx, want)
		if errors.Is(err, duct.ErrConflict) {
			return nil
		}
		return err
	case !sameSettings(&got, &want):
		_, err = ps.UpdateSubscription(ctx, want)
		return err
	}
	return nil
}

// reconcile deletes the subscriptions and schedule marks of triggers
// that no serving version has any more: removed while this node was
// down, by nodes that were down too. What is younger than a minute is
// left alone: a deploy may have made it after the versions were read.
func (m *Manager) reconcile(ctx context.Context) {
	if m.cfg.Active == nil {
		return
	}
	young := m.cfg.Clock.Now().Add(-time.Minute)
	vs, err := m.cfg.Active(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("trigger: cannot list functions to clean up after removed triggers", "err", err)
		}
		return
	}
	live := map[[2]string]bool{}
	for _, v := range vs {
		for _, t := range v.Spec.Triggers {
			live[[2]string{v.Function, t.ID()}] = true
		}
	}
	m.mu.Lock()
	ps := m.ps
	m.mu.Unlock()
	if ps != nil {
		subs, err := ps.ListSubscriptions(ctx)
		if err != nil {
			m.log.Warn("trigger: cannot list subscriptions", "err", err)
		}
		for _, s := range subs {
			fn, id := s.Labels[LabelFunction], s.Labels[LabelTrigger]
			if fn == "" || id == "" || s.Name != SubscriptionName(fn, id) || live[[2]string{fn, id}] || s.CreatedAt.After(young) {
				continue
			}
			if err := ps.DeleteSubscription(ctx, s.Name); err == nil {
				m.log.Info("trigger: deleted the subscription of a removed trigger", "subscription", s.Name)
			}
		}
	}
	keys, err := m.cfg.Marks.keys(ctx)
	if err != nil {
		m.log.Warn("trigger: cannot list schedule marks", "err", err)
	}
	for _, k := range keys {
		if live[k] {
			continue
		}
		if mk, _, err := m.cfg.Marks.Get(ctx, k[0], k[1]); err == nil && mk.Claimed.Before(young) {
			_ = m.cfg.Marks.Delete(ctx, k[0], k[1])
		}
	}
}
