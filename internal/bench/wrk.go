package bench

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrk runs the wrk load generator (as the brief's baselines were measured)
// and parses its report.
func wrk(ctx context.Context, url string, conns int, d time.Duration) (Result, error) {
	threads := min(conns, 2)
	cmd := exec.CommandContext(ctx, "wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(max(1, int(d.Seconds())))+"s", "--latency", url)
	out, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("wrk: %w", err)
	}
	return parseWrk(string(out), d)
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkTotal   = regexp.MustCompile(`(\d+) requests in`)
	wrkLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkErrors  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)|Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseWrk(out string, d time.Duration) (Result, error) {
	var r Result
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no Requests/sec in %q", out)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkTotal.FindStringSubmatch(out); m != nil {
		r.Requests, _ = strconv.Atoi(m[1])
	}
	r.Duration = d
	for _, m := range wrkLatency.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		lat := time.Duration(v * float64(unit))
		if m[1] == "50" {
			r.P50 = lat
		} else {
			r.P99 = lat
		}
	}
	for _, m := range wrkErrors.FindAllStringSubmatch(out, -1) {
		for _, g := range m[1:] {
			if n, err := strconv.Atoi(strings.TrimSpace(g)); err == nil {
				r.Errors += n
			}
		}
	}
	return r, nil
}
