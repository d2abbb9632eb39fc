package trigger

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones resolve on hosts without a zone database

	"github.com/duct-dev/duct"
	"github.com/robfig/cron/v3"
)

// Schedule is a parsed schedule trigger: when it ticks, in which time
// zone. The cron library only parses; which instants a schedule names
// (daylight-saving gaps and repeats included) is decided here.
type Schedule struct {
	spec string
	loc  *time.Location
	// every is set for "@every D": ticks at the multiples of D since
	// the Unix epoch, whatever the time zone.
	every time.Duration
	// Bit sets of the matching second, minute, hour, day of month
	// (1-31), month (1-12) and day of week (0-6, Sunday 0).
	second, minute, hour, dom, month, dow uint64
	// daysAnd: a day matches when its day of month AND its day of week
	// do (one of the two fields is * or ?); else either may (Vixie
	// cron's rule).
	daysAnd bool
	// hourly: every hour matches, so the schedule is a pace rather than
	// a time of day and keeps it through a repeated hour.
	hourly bool
}

// parser takes 5 fields, or 6 with seconds first, and @descriptors.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// starBit is the cron library's mark of a field written * or ?.
const starBit = 1 << 63

// horizon bounds the search for a schedule's next tick: a schedule that
// names no instant within it (February 30th) never ticks.
const horizon = 9 * 366 * 24 * time.Hour

// ParseSchedule parses a schedule trigger's cron spec in the time zone tz
// (an IANA name; empty means UTC). Errors match duct.ErrInvalid.
func ParseSchedule(spec, tz string) (s *Schedule, err error) {
	loc, err := duct.ScheduleLocation(tz)
	if err != nil {
		return nil, duct.Invalid("timezone", "%v", err)
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, duct.Invalid("cron", "empty: want 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or @hourly, @every 5m…")
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, duct.Invalid("cron", "%q: give the time zone in the timezone field, not in the spec", spec)
	}
	if len(spec) > 256 {
		return nil, duct.Invalid("cron", "longer than 256 characters")
	}
	defer func() {
		// The library is not ours: a spec it cannot handle is a bad spec,
		// never a crash.
		if r := recover(); r != nil {
			s, err = nil, duct.Invalid("cron", "%q: cannot be parsed", spec)
		}
	}()
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		return parseEvery(spec, strings.TrimSpace(d), loc)
	}
	parsed, err := parser.Parse(spec)
	if err != nil {
		return nil, duct.Invalid("cron", "%q: %v", spec, err)
	}
	ss, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, duct.Invalid("cron", "%q: cannot be parsed", spec)
	}
	s = &Schedule{
		spec: spec, loc: loc,
		second: ss.Second &^ starBit, minute: ss.Minute &^ starBit, hour: ss.Hour &^ starBit,
		dom: ss.Dom &^ starBit, month: ss.Month &^ starBit, dow: ss.Dow &^ starBit,
		daysAnd: ss.Dom&starBit != 0 || ss.Dow&starBit != 0,
	}
	s.hourly = s.hour == 1<<24-1
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, duct.Invalid("cron", "%q names no date that exists: it would never fire", spec)
	}
	return s, nil
}

func parseEvery(spec, d string, loc *time.Location) (*Schedule, error) {
	every, err := time.ParseDuration(d)
	switch {
	case err != nil:
		return nil, duct.Invalid("cron", "%q: %q is not a duration (want Go syntax, like 90s, 5m or 1h30m)", spec, d)
	case every < time.Second:
		return nil, duct.Invalid("cron", "%q: want at least 1s", spec)
	case every%time.Second != 0:
		return nil, duct.Invalid("cron", "%q: want whole seconds", spec)
	}
	return &Schedule{spec: spec, loc: loc, every: every}, nil
}

// String is the spec as given.
func (s *Schedule) String() string { return s.spec }

// Location is the schedule's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// Next returns the schedule's first tick strictly after after, in the
// schedule's time zone, or the zero time when it has none within nine
// years. Ticks fall on whole seconds.
//
// A cron spec names wall-clock times in the schedule's zone. Where the
// clock jumps forward (a daylight-saving gap), the wall times it skips do
// not exist: a schedule naming any of them ticks once, at the instant the
// gap ends. Where the clock falls back, the wall times it repeats exist
// twice: the schedule ticks at the first only, unless its hour field
// matches every hour (hourly, every 5 minutes…): such a schedule is a
// pace, kept through the repeated hour.
func (s *Schedule) Next(after time.Time) time.Time {
	if s.every > 0 {
		d := int64(s.every / time.Second)
		sec := after.Unix()
		n := sec / d
		if sec < 0 && sec%d != 0 {
			n-- // floor
		}
		return time.Unix((n+1)*d, 0).In(s.loc)
	}
	t := after.Truncate(time.Second).Add(time.Second)
	end := after.Add(horizon)
	for t.Before(end) {
		lt := t.In(s.loc)
		_, off := lt.Zone()
		start, next := lt.ZoneBounds()
		prev := off // the offset in force before this period began
		if !start.IsZero() {
			_, prev = start.Add(-time.Second).In(s.loc).Zone()
		}
		if t.Equal(start) && prev < off {
			// The clock jumped forward at start: the wall times in
			// [start+prev, start+off) do not exist.
			if _, ok := s.match(wall(start, prev), wall(start, off)); ok {
				return lt
			}
		}
		until := next
		switch {
		case until.IsZero() || until.After(end):
			until = end
		case !until.After(t):
			// ZoneBounds of some years past the zone's table (a leap
			// year's last day, Go 1.26) ends where it starts: go on a
			// day at a time there.
			until = t.Add(24 * time.Hour)
		}
		from, to := wall(t, off), wall(until, off)
		if prev > off && from.Before(wall(start, prev)) && !s.hourly {
			// The clock fell back at start: the wall times up to
			// start+prev were passed once already, before start.
			from = wall(start, prev)
		}
		if c, ok := s.match(from, to); ok {
			return c.Add(-time.Duration(off) * time.Second).In(s.loc)
		}
		t = until
	}
	return time.Time{}
}

// Latest returns the last tick in (from, to], or the zero time when
// there is none.
func (s *Schedule) Latest(from, to time.Time) time.Time {
	var last time.Time
	if s.every > 0 {
		d := int64(s.every / time.Second)
		sec := to.Unix()
		n := sec / d
		if sec < 0 && sec%d != 0 {
			n--
		}
		if t := time.Unix(n*d, 0); t.After(from) {
			last = t.In(s.loc)
		}
		return last
	}
	for t := s.Next(from); !t.IsZero() && !t.After(to); t = s.Next(t) {
		last = t
	}
	return last
}

// wall is the wall-clock time of instant t at offset off (seconds east of
// UTC), carried in a UTC time.Time: field arithmetic on it knows no
// daylight saving.
func wall(t time.Time, off int) time.Time {
	return t.UTC().Add(time.Duration(off) * time.Second)
}

// match returns the first wall time in [from, to) the fields match.
// from is a whole second.
func (s *Schedule) match(from, to time.Time) (time.Time, bool) {
	t := from
	for t.Before(to) {
		switch {
		case s.month&(1<<uint(t.Month())) == 0:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !s.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
		case s.hour&(1<<uint(t.Hour())) == 0:
			t = t.Truncate(time.Hour).Add(time.Hour)
		case s.minute&(1<<uint(t.Minute())) == 0:
			t = t.Truncate(time.Minute).Add(time.Minute)
		case s.second&(1<<uint(t.Second())) == 0:
			t = t.Add(time.Second)
		default:
			return t, true
		}
	}
	return time.Time{}, false
}

func (s *Schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.daysAnd {
		return dom && dow
	}
	return dom || dow
}

// describe is a schedule for messages: its spec and zone.
func (s *Schedule) describe() string {
	return fmt.Sprintf("%q in %s", s.spec, s.loc)
}
