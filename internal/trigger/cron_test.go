package trigger

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// at parses an RFC 3339 instant.
func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestScheduleNext lists, for a spec and a starting instant, the ticks
// that follow it. Offsets are written out so the daylight-saving cases
// read as what they are: Europe/Paris is +01:00 in winter and +02:00 in
// summer; in 2026 the clock jumps from 02:00 to 03:00 on March 29th and
// falls back from 03:00 to 02:00 on October 25th.
func TestScheduleNext(t *testing.T) {
	tests := []struct {
		name     string
		spec, tz string
		after    string
		want     []string
	}{
		{"five fields", "*/15 * * * *", "", "2026-05-01T10:07:00Z",
			[]string{"2026-05-01T10:15:00Z", "2026-05-01T10:30:00Z", "2026-05-01T10:45:00Z", "2026-05-01T11:00:00Z"}},
		{"strictly after", "0 * * * *", "", "2026-05-01T10:00:00Z",
			[]string{"2026-05-01T11:00:00Z"}},
		{"six fields, seconds first", "*/20 * * * * *", "", "2026-05-01T10:00:05Z",
			[]string{"2026-05-01T10:00:20Z", "2026-05-01T10:00:40Z", "2026-05-01T10:01:00Z"}},
		{"fraction of a second", "* * * * * *", "", "2026-05-01T10:00:05.3Z",
			[]string{"2026-05-01T10:00:06Z", "2026-05-01T10:00:07Z"}},
		{"hourly", "@hourly", "", "2026-05-01T10:59:59Z",
			[]string{"2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z"}},
		{"daily in a zone", "@daily", "Europe/Paris", "2026-05-01T10:00:00Z",
			[]string{"2026-05-01T22:00:00Z", "2026-05-02T22:00:00Z"}},
		{"every, aligned on the epoch", "@every 5m", "Europe/Paris", "2026-05-01T12:03:10Z",
			[]string{"2026-05-01T12:05:00Z", "2026-05-01T12:10:00Z"}},
		{"every, from a tick", "@every 90s", "", "2026-05-01T12:00:00Z",
			[]string{"2026-05-01T12:01:30Z", "2026-05-01T12:03:00Z"}},
		{"weekday names", "0 9 * * MON-FRI", "", "2026-05-01T10:00:00Z", // a Friday
			[]string{"2026-05-04T09:00:00Z", "2026-05-05T09:00:00Z"}},
		{"day of month or of week (both given)", "0 0 1,15 * SUN", "", "2026-05-01T00:00:00Z",
			[]string{"2026-05-03T00:00:00Z", "2026-05-10T00:00:00Z", "2026-05-15T00:00:00Z", "2026-05-17T00:00:00Z"}},
		{"day of month and ?", "0 0 31 * ?", "", "2026-05-01T00:00:00Z",
			[]string{"2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"}},
		{"leap day", "0 0 29 2 *", "", "2026-03-01T00:00:00Z",
			[]string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},

		// Spring forward in Paris: 02:00-02:59 does not exist.
		{"gap: a time in it fires at its end", "30 2 * * *", "Europe/Paris", "2026-03-28T12:00:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"gap: several times in it fire once", "*/15 2 * * *", "Europe/Paris", "2026-03-29T01:00:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"}},
		{"gap: a pace skips the lost hour", "*/30 * * * *", "Europe/Paris", "2026-03-29T01:00:00+01:00",
			[]string{"2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00"}},
		{"gap: the time after it is unaffected", "0 3 * * *", "Europe/Paris", "2026-03-28T12:00:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T03:00:00+02:00"}},
		{"gap: the time before it is unaffected", "59 1 * * *", "Europe/Paris", "2026-03-28T12:00:00+01:00",
			[]string{"2026-03-29T01:59:00+01:00", "2026-03-30T01:59:00+02:00"}},
		{"gap of half an hour", "15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30",
			[]string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
		{"gap in New York", "30 2 * * *", "America/New_York", "2026-03-07T12:00:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},

		// Fall back in Paris: 02:00-02:59 happens twice.
		{"repeat: a time in it fires once, the first time", "30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00+02:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"repeat: from inside the second pass", "30 2 * * *", "Europe/Paris", "2026-10-25T02:10:00+01:00",
			[]string{"2026-10-26T02:30:00+01:00"}},
		{"repeat: several times in it fire once each", "0,30 2 * * *", "Europe/Paris", "2026-10-25T01:00:00+02:00",
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:00:00+01:00"}},
		{"repeat: a pace keeps its pace", "*/30 * * * *", "Europe/Paris", "2026-10-25T01:50:00+02:00",
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00",
				"2026-10-25T02:30:00+01:00", "2026-10-25T03:00:00+01:00"}},
		{"repeat: hourly keeps its pace", "@hourly", "Europe/Paris", "2026-10-25T01:30:00+02:00",
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"}},
		{"repeat: a time after it", "0 3 * * *", "Europe/Paris", "2026-10-24T12:00:00+02:00",
			[]string{"2026-10-25T03:00:00+01:00", "2026-10-26T03:00:00+01:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSchedule(tt.spec, tt.tz)
			if err != nil {
				t.Fatal(err)
			}
			cur := at(t, tt.after)
			for i, w := range tt.want {
				got := s.Next(cur)
				if want := at(t, w); !got.Equal(want) {
					t.Fatalf("tick %d after %s: got %s, want %s", i+1, cur.Format(time.RFC3339), got.Format(time.RFC3339), want.Format(time.RFC3339))
				}
				cur = got
			}
		})
	}
}

// TestScheduleLatest: the last tick within a window, the basis of the
// catch-up policy.
func TestScheduleLatest(t *testing.T) {
	tests := []struct {
		spec, tz, from, to, want string
	}{
		{"*/5 * * * *", "", "2026-05-01T10:00:00Z", "2026-05-01T10:17:00Z", "2026-05-01T10:15:00Z"},
		{"*/5 * * * *", "", "2026-05-01T10:15:00Z", "2026-05-01T10:19:59Z", ""}, // from is exclusive
		{"*/5 * * * *", "", "2026-05-01T10:14:59Z", "2026-05-01T10:15:00Z", "2026-05-01T10:15:00Z"},
		{"@every 1h", "", "2026-05-01T10:00:00Z", "2026-05-01T12:30:00Z", "2026-05-01T12:00:00Z"},
		{"@every 1h", "", "2026-05-01T12:00:00Z", "2026-05-01T12:30:00Z", ""},
		{"30 2 * * *", "Europe/Paris", "2026-03-29T00:00:00Z", "2026-03-29T06:00:00Z", "2026-03-29T01:00:00Z"},
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.spec, tt.tz)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Latest(at(t, tt.from), at(t, tt.to))
		if tt.want == "" {
			if !got.IsZero() {
				t.Errorf("%s: Latest(%s, %s) = %s, want none", tt.spec, tt.from, tt.to, got)
			}
			continue
		}
		if !got.Equal(at(t, tt.want)) {
			t.Errorf("%s: Latest(%s, %s) = %s, want %s", tt.spec, tt.from, tt.to, got, tt.want)
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct{ spec, tz, want string }{
		{"", "", "empty"},
		{"* * * *", "", "expected 5 to 6 fields"},
		{"* * * * * * *", "", "expected 5 to 6 fields"},
		{"61 * * * *", "", "above maximum"},
		{"* 24 * * *", "", "above maximum"},
		{"0 0 0 * *", "", "below minimum"},
		{"0 0 * * 7", "", "above maximum"},
		{"5-1 * * * *", "", "beyond end"},
		{"*/0 * * * *", "", "positive"},
		{"@weekly2", "", "unrecognized descriptor"},
		{"@every 0s", "", "at least 1s"},
		{"@every 500ms", "", "at least 1s"},
		{"@every 1.5s", "", "whole seconds"},
		{"@every soon", "", "not a duration"},
		{"0 0 30 2 *", "", "never fire"},
		{"TZ=Europe/Paris 0 * * * *", "", "timezone field"},
		{"CRON_TZ=UTC0", "", "timezone field"},
		{"0 * * * *", "Mars/Olympus_Mons", "not a known time zone"},
		{"0 * * * *", "Local", "depends on the server"},
	}
	for _, tt := range tests {
		_, err := ParseSchedule(tt.spec, tt.tz)
		if err == nil {
			t.Errorf("ParseSchedule(%q, %q): no error, want %q", tt.spec, tt.tz, tt.want)
			continue
		}
		if !errors.Is(err, duct.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSchedule(%q, %q): %v, want an invalid error about %q", tt.spec, tt.tz, err, tt.want)
		}
	}
}

// FuzzParseSchedule: no spec crashes the parser or the search for ticks,
// and the ticks of a spec it accepts move forward, on whole seconds.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"*/5 * * * *", "0 9 * * MON-FRI", "*/20 * * * * *", "@hourly", "@every 90s",
		"30 2 * * *", "0 0 29 2 *", "TZ=X", "CRON_TZ=", "@every -1s", "1-5/2,7 */3 1-31/4 jan-dec/2 ?"} {
		f.Add(s, "Europe/Paris")
		f.Add(s, "")
	}
	start := time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec, tz string) {
		if tz != "" && tz != "Europe/Paris" && tz != "Australia/Lord_Howe" {
			tz = "" // not a fuzz target of ours: the zone database
		}
		s, err := ParseSchedule(spec, tz)
		if err != nil {
			if !errors.Is(err, duct.ErrInvalid) {
				t.Fatalf("%q: error %v does not match ErrInvalid", spec, err)
			}
			return
		}
		cur := start
		for range 5 {
			next := s.Next(cur)
			if next.IsZero() {
				return
			}
			if !next.After(cur) || next.Nanosecond() != 0 {
				t.Fatalf("%q: Next(%s) = %s", spec, cur, next)
			}
			cur = next
		}
	})
}
