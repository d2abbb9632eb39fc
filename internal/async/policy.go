package async

import (
	"errors"
	"net/http"
	"time"

	"github.com/duct-dev/duct"
)

// policy is a function's retry policy with defaults and bounds applied.
type policy struct {
	maxAttempts          int           // the first attempt and the retries
	maxAge               time.Duration // from submission to the last attempt's start
	onSuccess, onFailure string        // destination topics; empty for none
}

// policyOf applies defaults and bounds to spec's retry policy; minAge is
// the least maxEventAge allowed (duct.MinMaxEventAge unless tests say).
func policyOf(spec duct.Function, minAge time.Duration) policy {
	p := policy{maxAttempts: 1 + duct.DefaultRetryAttempts, maxAge: duct.DefaultMaxEventAge.D()}
	r := spec.Retry
	if r == nil {
		return p
	}
	if r.Attempts != nil {
		p.maxAttempts = 1 + max(*r.Attempts, 0)
	}
	if r.MaxEventAge > 0 {
		p.maxAge = min(max(r.MaxEventAge.D(), minAge), duct.MaxMaxEventAge.D())
	}
	p.onSuccess, p.onFailure = r.OnSuccess, r.OnFailure
	return p
}

// verdict is what becomes of an invocation after an attempt.
type verdict int

const (
	// succeed: the function answered below 400. Final.
	succeed verdict = iota
	// retry: the attempt failed in a way worth trying again (a 5xx, 408
	// or 429 from the function, a timeout, a crash, a failed start), if
	// attempts and age allow. It counts as an attempt.
	retry
	// fail: the request itself is wrong (a 4xx from the function) or the
	// function is gone. Final.
	fail
	// throttle: no instance was free (429 or 503 from the pool). Tried
	// again after a backoff; it does not count as an attempt.
	throttle
	// requeue: this node is stopping. Put back at once, for another
	// node or the next start; it counts only if it reached an instance.
	requeue
)

func (v verdict) String() string {
	return [...]string{"succeed", "retry", "fail", "throttle", "requeue"}[v]
}

// classify decides from an attempt's report, or the error of an attempt
// that did not run.
func classify(rep *duct.Report, err error) verdict {
	switch {
	case errors.Is(err, duct.ErrNotFound):
		return fail
	case err != nil:
		return requeue
	}
	switch rep.Outcome {
	case duct.OutcomeThrottled:
		return throttle
	case duct.OutcomeCanceled:
		return requeue
	case duct.OutcomeTimeout, duct.OutcomeCrash, duct.OutcomeMemory, duct.OutcomeInitFailed:
		return retry
	case duct.OutcomeLoop:
		return fail
	}
	switch s := rep.Status; {
	case s < 400:
		return succeed
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests:
		// The function itself says "later": take it at its word.
		return retry
	case s < 500:
		return fail
	}
	return retry
}

// retryDelay is the wait before retry n (1 for the first): base, then
// doubling, at most a day.
func retryDelay(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < 24*time.Hour; i++ {
		d *= 2
	}
	return min(d, 24*time.Hour)
}

// throttleDelay is the wait after the n-th time (1 for the first) an
// invocation found no instance free: base doubling up to most.
func throttleDelay(base, most time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}
