package duct

import "time"

// Report is the Lambda-style record written at the end of every
// invocation.
type Report struct {
	Invocation     string        `json:"invocation"`
	Function       string        `json:"function"`
	Version        int           `json:"version"`
	Instance       string        `json:"instance,omitempty"`
	Start          time.Time     `json:"start"`
	Duration       time.Duration `json:"duration"`
	BilledDuration time.Duration `json:"billedDuration"`
	MemorySize     ByteSize      `json:"memorySize"`
	MaxMemoryUsed  ByteSize      `json:"maxMemoryUsed"`
	// InitDuration is set on the invocation that cold-started its
	// instance: from process start to ready.
	InitDuration time.Duration `json:"initDuration,omitempty"`
	QueueWait    time.Duration `json:"queueWait,omitempty"`
	Status       int           `json:"status"`
	Outcome      Outcome       `json:"outcome"`
	Error        string        `json:"error,omitempty"`
}

// Outcome classifies how an invocation ended, for metrics and reports.
type Outcome string

const (
	OutcomeSuccess    Outcome = "success"     // the function answered (any status it chose)
	OutcomeError      Outcome = "error"       // the function answered 5xx or raised
	OutcomeTimeout    Outcome = "timeout"     // killed past its time budget
	OutcomeCrash      Outcome = "crash"       // the instance died mid-request
	OutcomeMemory     Outcome = "memory"      // killed for exceeding its memory limit
	OutcomeThrottled  Outcome = "throttled"   // no capacity within the queue timeout
	OutcomeInitFailed Outcome = "init_failed" // the instance could not start
	OutcomeCanceled   Outcome = "canceled"    // the client went away
)

// BillingGranularity rounds billed durations up, as Lambda does.
const BillingGranularity = time.Millisecond

// LogStream names where a log entry came from.
type LogStream string

const (
	LogStdout   LogStream = "stdout"
	LogStderr   LogStream = "stderr"
	LogReport   LogStream = "report"
	LogPlatform LogStream = "platform" // instance started, stopped (with why and how it ended)
)

// LogEntry is one line of a function's log.
type LogEntry struct {
	Time       time.Time `json:"time"`
	Function   string    `json:"function"`
	Version    int       `json:"version,omitempty"`
	Instance   string    `json:"instance,omitempty"`
	Invocation string    `json:"invocation,omitempty"`
	Stream     LogStream `json:"stream"`
	Message    string    `json:"message,omitempty"`
	Report     *Report   `json:"report,omitempty"`
}
