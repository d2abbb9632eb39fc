package cli

import (
	"bufio"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct"
)

func TestLogsShowOutputAndReport(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"chatty/index.js": nodeHandler})
	ok(t, server, "deploy", dir+"/chatty")
	ok(t, server, "invoke", "chatty", "--path", "/first")
	ok(t, server, "invoke", "chatty", "--path", "/second")

	line := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z chatty\[1\] ([0-9a-f]{8}): node saw GET /first$`)
	report := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z chatty\[1\] ([0-9a-f]{8}): REPORT RequestId: ([0-9a-f]{28}) ` +
		`Duration: \d+\.\d\d ms Billed Duration: \d+ ms Memory Size: 256 MB Max Memory Used: \d+ MB`)
	var out string
	var short, full string
	eventually(t, 10*time.Second, func() string {
		out = ok(t, server, "logs", "chatty").stdout
		short, full = "", ""
		for _, l := range strings.Split(out, "\n") {
			if m := line.FindStringSubmatch(l); m != nil {
				short = m[1]
			}
			if m := report.FindStringSubmatch(l); m != nil && m[1] == short {
				full = m[2]
			}
		}
		if short == "" || full == "" {
			return "no output line and REPORT for /first in:\n" + out
		}
		return ""
	})
	if !strings.HasSuffix(full, short) {
		t.Errorf("short id %s is not the end of %s", short, full)
	}
	if !strings.Contains(out, "Init Duration:") {
		t.Errorf("the cold start's REPORT has no Init Duration:\n%s", out)
	}

	// One invocation, by its short or its full id.
	for _, id := range []string{short, full} {
		got := ok(t, server, "logs", "chatty", "--invocation", id).stdout
		if !strings.Contains(got, "node saw GET /first") || strings.Contains(got, "/second") || !strings.Contains(got, "REPORT") {
			t.Errorf("--invocation %s:\n%s", id, got)
		}
	}
	// The last entry only.
	if got := ok(t, server, "logs", "chatty", "--tail", "1").stdout; strings.Count(got, "\n") != 1 || !strings.Contains(got, "REPORT") {
		t.Errorf("--tail 1:\n%s", got)
	}
	// JSON, one entry a line.
	sc := bufio.NewScanner(strings.NewReader(ok(t, server, "logs", "chatty", "--json", "--since", "5m").stdout))
	var reports, stdout int
	for sc.Scan() {
		var e duct.LogEntry
		mustJSON(t, sc.Text(), &e)
		switch {
		case e.Report != nil:
			reports++
		case e.Stream == duct.LogStdout:
			stdout++
		}
	}
	if reports != 2 || stdout != 2 {
		t.Errorf("--json: %d reports, %d stdout lines, want 2 and 2", reports, stdout)
	}
	if r := run(t, server, "logs", "chatty", "--since", "yesterday"); r.code != 2 {
		t.Errorf("--since yesterday: exit %d", r.code)
	}
	if r := run(t, server, "logs", "nope"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("logs nope: exit %d %q", r.code, r.stderr)
	}
}

func TestFormatEntry(t *testing.T) {
	at := time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC)
	tests := []struct {
		e    duct.LogEntry
		want string
	}{
		{duct.LogEntry{Time: at, Function: "hello", Version: 3, Invocation: "0123456789abcdef0123abcd1234", Stream: duct.LogStdout, Message: "hi"},
			"2026-11-30T11:00:00.000Z hello[3] abcd1234: hi"},
		{duct.LogEntry{Time: at, Function: "hello", Version: 3, Instance: "i1", Stream: duct.LogPlatform, Message: "instance i1 started in 4ms"},
			"2026-11-30T11:00:00.000Z hello[3]: [duct] instance i1 started in 4ms"},
		{duct.LogEntry{Time: at, Function: "hello", Version: 3, Invocation: "0123456789abcdef0123abcd1234", Stream: duct.LogReport,
			Report: &duct.Report{Invocation: "0123456789abcdef0123abcd1234", Duration: 1234 * time.Microsecond, BilledDuration: 2 * time.Millisecond,
				MemorySize: 256 * duct.MiB, MaxMemoryUsed: 31*duct.MiB - 5, InitDuration: 4100 * time.Microsecond, Outcome: duct.OutcomeSuccess}},
			"2026-11-30T11:00:00.000Z hello[3] abcd1234: REPORT RequestId: 0123456789abcdef0123abcd1234 Duration: 1.23 ms Billed Duration: 2 ms Memory Size: 256 MB Max Memory Used: 31 MB Init Duration: 4.10 ms"},
		{duct.LogEntry{Time: at, Function: "hello", Version: 1, Invocation: "x", Stream: duct.LogReport,
			Report: &duct.Report{Invocation: "x", Duration: time.Second, BilledDuration: time.Second, MemorySize: 128 * duct.MiB,
				Outcome: duct.OutcomeTimeout, Error: "timed out"}},
			"2026-11-30T11:00:00.000Z hello[1] x: REPORT RequestId: x Duration: 1000.00 ms Billed Duration: 1000 ms Memory Size: 128 MB Max Memory Used: 0 MB Status: timeout Error: timed out"},
	}
	for _, tt := range tests {
		if got := formatEntry(tt.e); got != tt.want {
			t.Errorf("formatEntry:\n got %s\nwant %s", got, tt.want)
		}
	}
}

func TestLogsFollow(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"tail/main.py": pythonHandler})
	ok(t, server, "deploy", dir+"/tail")

	ctx, cancel := contextWithCancel(t)
	var out syncBuffer
	done := make(chan int)
	go func() {
		e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &out,
			getenv: func(k string) string { return map[string]string{"DUCT_TOKEN": testToken}[k] }}
		done <- e.main(ctx, []string{"logs", "tail", "-f", "--server", server})
	}()
	ok(t, server, "invoke", "tail", "--data", "followed")
	eventually(t, 10*time.Second, func() string {
		if !strings.Contains(out.String(), "python saw POST /") || !strings.Contains(out.String(), "REPORT") {
			return "logs -f printed:\n" + out.String()
		}
		return ""
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("logs -f exit %d after interrupt:\n%s", code, out.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("logs -f did not stop when interrupted")
	}
}
