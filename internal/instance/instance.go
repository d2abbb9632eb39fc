// Package instance launches and talks to function instances: a process
// serving one function version over HTTP on loopback. It keeps pre-started
// language runtimes ("spares") so that a cold start only loads the user's
// module, captures the instance's output as tagged log lines, and carries
// requests to the instance.
package instance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/sandbox"
)

// Instance is one running instance of a function version.
type Instance struct {
	ID        string
	Function  string
	Version   int
	Addr      string // "unix:PATH" or "tcp:HOST:PORT"
	StartedAt time.Time
	// InitDuration is how long the instance took to become ready, as seen
	// by the request that waited for it.
	InitDuration time.Duration

	proc   proc
	jail   *sandbox.Jail // nil when not sandboxed
	ctrl   io.Closer     // shim control socket; nil for bring-your-own servers
	client *client
	logs   *logPump
	served atomic.Int64
	closed atomic.Bool

	peak     atomic.Int64 // cached PeakMemory
	peakRead atomic.Int64 // when peak was read, Unix ns
}

// Do sends one request to the instance and reads the response head, its
// end-to-end headers added to respHeader. deadline bounds the whole
// exchange, the response body included; ctx ending aborts it. A request
// past its deadline fails with an error matching ErrDeadline.
func (i *Instance) Do(ctx context.Context, req *Request, deadline time.Time, respHeader http.Header) (*Response, error) {
	return i.client.do(ctx, req, deadline, respHeader)
}

// ErrDeadline is returned, or read from a response body, when a request
// runs past its deadline.
var ErrDeadline = errDeadline

// Done is closed when the instance's process has exited.
func (i *Instance) Done() <-chan struct{} { return i.proc.Done() }

// Exited reports whether the process has exited.
func (i *Instance) Exited() bool { return i.proc.Exited() }

// ExitReason says how the process ended, once Done.
func (i *Instance) ExitReason() string {
	if i.OOMKilled() {
		return "was killed: memory limit exceeded"
	}
	return i.proc.ExitReason()
}

// OOMKilled reports whether the kernel killed a process of the instance
// for exceeding its memory limit.
func (i *Instance) OOMKilled() bool { return i.jail != nil && i.jail.OOMKilled() }

// Sandboxed reports whether the instance runs in a sandbox.
func (i *Instance) Sandboxed() bool { return i.jail != nil }

// PID is the instance process id.
func (i *Instance) PID() int { return i.proc.PID() }

// PeakMemory is the most memory the instance has used, in bytes.
func (i *Instance) PeakMemory() int64 { return i.proc.PeakMemory() }

// PeakMemoryCached is PeakMemory read at most every 100 ms, for the hot
// path.
func (i *Instance) PeakMemoryCached() int64 {
	now := time.Now().UnixNano()
	if now-i.peakRead.Load() > int64(100*time.Millisecond) {
		i.peakRead.Store(now)
		i.peak.Store(i.proc.PeakMemory())
	}
	return i.peak.Load()
}

// Served counts requests that completed on this instance.
func (i *Instance) Served() int64 { return i.served.Load() }

// Begin tags the instance's output with an invocation id until End. Use
// it only while the instance serves one request at a time.
func (i *Instance) Begin(invocation string) { i.logs.begin(invocation) }

// End settles the output written so far under the current invocation and
// stops tagging. It counts the request as served.
func (i *Instance) End() {
	i.served.Add(1)
	i.logs.end()
}

// Kill stops the instance at once; why goes to the function's log.
func (i *Instance) Kill(why string) {
	i.proc.Kill()
	i.close(why)
}

// Stop asks the instance to exit, killing it after grace, and waits; why
// goes to the function's log.
func (i *Instance) Stop(grace time.Duration, why string) {
	i.proc.Stop(grace)
	i.close(why)
}

func (i *Instance) close(why string) {
	if i.closed.CompareAndSwap(false, true) {
		<-i.proc.Done()
		i.logs.platform(fmt.Sprintf("instance %s stopped (%s): %s", i.ID, why, i.proc.ExitReason()))
	}
	removeSocket(i.Addr)
	if i.ctrl != nil {
		i.ctrl.Close()
	}
	i.client.close()
}

// Info describes the instance for the API.
func (i *Instance) Info(state string, inflight int) duct.InstanceInfo {
	return duct.InstanceInfo{
		ID:        i.ID,
		Version:   i.Version,
		State:     state,
		InFlight:  inflight,
		StartedAt: i.StartedAt,
		PID:       i.PID(),
		Served:    i.Served(),
		MaxMemory: i.PeakMemory(),
	}
}
