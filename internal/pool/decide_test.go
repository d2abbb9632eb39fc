package pool

import (
	"reflect"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	idle := func(id string, ago time.Duration) Idle { return Idle{ID: id, Since: t0.Add(-ago)} }
	lim := Limits{Concurrency: 1, Min: 0, Max: 10, IdleTimeout: time.Minute}
	tests := []struct {
		name  string
		stats Stats
		lim   Limits
		want  Decision
	}{
		{"nothing to do", Stats{}, lim, Decision{}},
		{"cold start", Stats{Waiting: 1}, lim, Decision{Start: 1}},
		{"one per waiter", Stats{Ready: 2, Waiting: 5}, lim, Decision{Start: 5}},
		{"launching instances count", Stats{Starting: 3, Waiting: 5}, lim, Decision{Start: 2}},
		{"enough launching", Stats{Starting: 5, Waiting: 5}, lim, Decision{}},
		{"capped by max", Stats{Ready: 8, Waiting: 50}, lim, Decision{Start: 2}},
		{"at max", Stats{Ready: 10, Waiting: 50}, lim, Decision{}},
		{"concurrency packs waiters", Stats{Waiting: 81}, Limits{Concurrency: 80, Max: 10}, Decision{Start: 2}},
		{"concurrency counts launching slots", Stats{Starting: 1, Waiting: 80}, Limits{Concurrency: 80, Max: 10}, Decision{}},
		{"min instances", Stats{}, Limits{Concurrency: 1, Min: 2, Max: 10}, Decision{Start: 2}},
		{"min counts launching", Stats{Starting: 1}, Limits{Concurrency: 1, Min: 2, Max: 10}, Decision{Start: 1}},
		{"reap idle past timeout", Stats{Ready: 2, Idle: []Idle{idle("a", 2*time.Minute), idle("b", time.Second)}}, lim,
			Decision{Stop: []string{"a"}}},
		{"reap oldest first", Stats{Ready: 3, Idle: []Idle{idle("new", 61*time.Second), idle("old", time.Hour)}}, lim,
			Decision{Stop: []string{"old", "new"}}},
		{"exactly at timeout reaps", Stats{Ready: 1, Idle: []Idle{idle("a", time.Minute)}}, lim, Decision{Stop: []string{"a"}}},
		{"keep min", Stats{Ready: 2, Idle: []Idle{idle("a", time.Hour), idle("b", time.Hour)}},
			Limits{Concurrency: 1, Min: 1, Max: 10, IdleTimeout: time.Minute}, Decision{Stop: []string{"a"}}},
		{"never reap while requests wait", Stats{Ready: 2, Waiting: 1, Idle: []Idle{idle("a", time.Hour)}}, lim,
			Decision{Start: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(t0, tt.stats, tt.lim)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decide(%+v, %+v) = %+v, want %+v", tt.stats, tt.lim, got, tt.want)
			}
		})
	}
}
