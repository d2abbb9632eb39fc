// Package duct holds Duct's domain: the types that describe functions,
// versions, invocations and their records, the sentinel errors callers
// branch on, and the limits every component agrees on. It imports only the
// standard library; implementations live under internal/.
package duct

// LogSink receives function log entries and invocation reports. Log must
// not block: an implementation that cannot keep up drops and counts.
type LogSink interface {
	Log(LogEntry)
}
