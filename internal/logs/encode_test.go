package logs

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/duct-dev/duct"
)

// appendEntry must produce what encoding/json reads back as the same entry.
func TestAppendEntryRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 11, 0, 0, 123456789, time.UTC)
	entries := []duct.LogEntry{
		{Time: t0, Function: "hello", Stream: duct.LogStdout, Message: "plain"},
		{Time: t0, Function: "hello", Version: 3, Instance: "abc", Invocation: "def", Stream: duct.LogStderr,
			Message: "quote \" backslash \\ tab \t nl \n ctl \x01 html <&> uni é 日本 \u2028 bad \xff end"},
		{Time: t0, Function: "f", Version: 1, Stream: duct.LogReport, Report: &duct.Report{
			Invocation: "i", Function: "f", Version: 1, Instance: "x", Start: t0, Duration: 1500 * time.Microsecond,
			BilledDuration: 2 * time.Millisecond, MemorySize: 256 * duct.MiB, MaxMemoryUsed: 31 * duct.MiB,
			InitDuration: 4 * time.Millisecond, QueueWait: time.Millisecond, Status: 200, Outcome: duct.OutcomeSuccess}},
		{Time: t0, Function: "f", Stream: duct.LogReport, Report: &duct.Report{Function: "f", Start: t0, Status: 504,
			Outcome: duct.OutcomeTimeout, Error: "timed out", MaxMemoryUsed: 12345}},
	}
	for _, e := range entries {
		line := appendEntry(nil, &e)
		var got duct.LogEntry
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		want := e
		if e.Message != "" {
			// encoding/json replaces invalid UTF-8 the same way.
			b, _ := json.Marshal(e.Message)
			json.Unmarshal(b, &want.Message)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", line, got, want)
		}
	}
}

func BenchmarkAppendEntry(b *testing.B) {
	e := duct.LogEntry{Time: time.Now(), Function: "f", Version: 1, Stream: duct.LogReport, Report: &duct.Report{
		Invocation: "0123456789abcdef0123456789ab", Function: "f", Version: 1, Instance: "x", Start: time.Now(),
		Duration: 1500 * time.Microsecond, BilledDuration: 2 * time.Millisecond, MemorySize: 256 * duct.MiB,
		MaxMemoryUsed: 31 * duct.MiB, Status: 200, Outcome: duct.OutcomeSuccess}}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEntry(buf[:0], &e)
	}
}
