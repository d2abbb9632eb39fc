package pool

import (
	"sort"
	"time"
)

// Limits are the scaling knobs of one function version.
type Limits struct {
	Concurrency int // requests in flight per instance
	Min, Max    int // instances
	IdleTimeout time.Duration
}

// Stats is what a scaling decision looks at.
type Stats struct {
	Ready    int // instances serving or able to
	Starting int // instances launching
	Waiting  int // requests queued for a slot
	// Idle lists instances with nothing in flight and since when. Only
	// periodic ticks fill it: scale-down is never decided on the request
	// path.
	Idle []Idle
}

// Idle is an instance with nothing in flight.
type Idle struct {
	ID    string
	Since time.Time
}

// Decision is what to do now.
type Decision struct {
	Start int      // instances to launch
	Stop  []string // idle instances to stop
}

// Decide is the scaling policy, a pure function of time, state and limits:
//   - launch enough instances that every waiting request has a slot coming,
//     counting the slots of instances already launching;
//   - keep at least Min instances, never more than Max;
//   - stop instances idle for IdleTimeout, oldest idle first, while more
//     than Min remain and nothing is waiting.
func Decide(now time.Time, s Stats, l Limits) Decision {
	var d Decision
	conc := max(l.Concurrency, 1)
	total := s.Ready + s.Starting
	if short := s.Waiting - s.Starting*conc; short > 0 {
		d.Start = (short + conc - 1) / conc
	}
	if total+d.Start < l.Min {
		d.Start = l.Min - total
	}
	d.Start = max(0, min(d.Start, l.Max-total))
	if s.Waiting > 0 || len(s.Idle) == 0 {
		return d
	}
	idle := append([]Idle(nil), s.Idle...)
	sort.SliceStable(idle, func(i, j int) bool { return idle[i].Since.Before(idle[j].Since) })
	keep := total + d.Start
	for _, in := range idle {
		if keep <= l.Min || now.Sub(in.Since) < l.IdleTimeout {
			break
		}
		d.Stop = append(d.Stop, in.ID)
		keep--
	}
	return d
}
