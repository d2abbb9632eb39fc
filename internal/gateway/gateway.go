// Package gateway serves ANY /fn/{name}[/{path…}]: it finds the function's
// pool, acquires an instance slot, proxies the request with full HTTP
// semantics (streamed both ways, within size and time limits), releases
// the slot and records the invocation. Platform failures are answered as
// problem details; the function's own responses pass through untouched.
package gateway

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/id"
	"github.com/duct-dev/duct/internal/instance"
	"github.com/duct-dev/duct/internal/metrics"
	"github.com/duct-dev/duct/internal/pool"
	"github.com/duct-dev/duct/internal/problem"
)

// Prefix is where functions are mounted.
const Prefix = "/fn/"

// Router finds the pool serving a function.
type Router interface {
	Lookup(name string) *pool.Pool
}

// Config configures a Gateway. Zero values get defaults in New.
type Config struct {
	Router Router
	Logs   duct.LogSink
	// Auth checks the bearer token of requests to functions whose invoke
	// mode is token. Nil refuses every such request.
	Auth   duct.Authenticator
	Logger *slog.Logger
	// MaxRequestBody and MaxResponseBody bound synchronous bodies; 0 means
	// duct.MaxSyncBody (6 MiB), negative means unlimited.
	MaxRequestBody  int64
	MaxResponseBody int64
	// Queue stores invocations asked for with Prefer: respond-async; nil
	// ignores the preference (RFC 7240 allows it): they run
	// synchronously.
	Queue Queue
}

// Gateway is the function-invocation HTTP handler.
type Gateway struct {
	cfg Config
	log *slog.Logger
}

// New returns a Gateway.
func New(cfg Config) *Gateway {
	if cfg.MaxRequestBody == 0 {
		cfg.MaxRequestBody = int64(duct.MaxSyncBody)
	}
	if cfg.MaxResponseBody == 0 {
		cfg.MaxResponseBody = int64(duct.MaxSyncBody)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Gateway{cfg: cfg, log: cfg.Logger}
}

// Response headers Duct adds.
const (
	HeaderRequestID  = "X-Request-Id"
	HeaderInvocation = "X-Duct-Invocation-Id"
	HeaderDeadline   = "X-Duct-Deadline-Ms"
	// HeaderHops counts the invocations a chain of requests has passed
	// through: the gateway sends the caller's value plus one (1 when the
	// caller sent none), and refuses a request past duct.MaxHops.
	HeaderHops = duct.HeaderHops
)

var (
	errRequestTooLarge  = errors.New("request body too large")
	errResponseTooLarge = errors.New("response body too large")
)

// ServeHTTP invokes the function named in the path.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, rest, ok := splitPath(r.URL.Path)
	if !ok {
		invID := id.New()
		w.Header()[HeaderRequestID] = []string{invID}
		problem.WriteStatus(w, r, invID, http.StatusNotFound, "Not Found", "invoke a function at /fn/{name}")
		return
	}
	g.ServeFunction(w, r, name, rest)
}

// ServeFunction invokes function name with the request, rest being the
// path the function sees ("/" at least). Routes other than /fn/ (HTTP
// triggers) call it directly.
func (g *Gateway) ServeFunction(w http.ResponseWriter, r *http.Request, name, rest string) {
	invID := id.New()
	w.Header()[HeaderRequestID] = []string{invID}
	if rest == "" {
		rest = "/"
	}
	p := g.cfg.Router.Lookup(name)
	if p == nil {
		problem.WriteStatus(w, r, invID, http.StatusNotFound, "Not Found", "no function named "+strconv.Quote(name))
		return
	}
	admitted := p.Version().Spec.Invoke == duct.InvokeToken
	if admitted && !g.admit(w, r, name, invID) {
		return
	}
	hops, ok := hopsOf(r.Header)
	if !ok {
		problem.WriteStatus(w, r, invID, http.StatusBadRequest, "Bad Request", HeaderHops+" must be one non-negative integer")
		return
	}
	if hops > duct.MaxHops {
		g.loop(w, r, p, invID, hops)
		return
	}
	if g.cfg.Queue != nil && prefersAsync(r.Header) {
		g.submit(w, r, name, rest, invID, hops)
		return
	}
	if g.cfg.MaxRequestBody > 0 && r.ContentLength > g.cfg.MaxRequestBody {
		problem.WriteStatus(w, r, invID, http.StatusRequestEntityTooLarge, "Content Too Large",
			"request body exceeds "+strconv.FormatInt(g.cfg.MaxRequestBody, 10)+" bytes")
		return
	}
	if _, abort := g.invoke(w, r, p, name, target(r, rest), invID, admitted, hops); abort {
		// The status line is out: all that is left is to cut the response short.
		panic(http.ErrAbortHandler)
	}
}

// admit checks the bearer token of a request to a function whose invoke
// mode is token, and answers 401 or 403 when it may not invoke. An
// admitted request loses its Authorization header: the function's code
// never sees the caller's token.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, name, invID string) bool {
	auth := r.Header["Authorization"]
	if len(auth) == 0 {
		w.Header()["Www-Authenticate"] = challenge
		problem.WriteStatus(w, r, invID, http.StatusUnauthorized, "Unauthorized",
			"function "+strconv.Quote(name)+" requires a bearer token (Authorization: Bearer <token>) of role invoke, deploy or admin")
		return false
	}
	var p duct.Principal
	err := duct.ErrUnauthorized
	if tok, ok := bearer(auth); ok && g.cfg.Auth != nil {
		p, err = g.cfg.Auth.Authenticate(r.Context(), tok)
	}
	switch {
	case errors.Is(err, duct.ErrUnauthorized):
		w.Header()["Www-Authenticate"] = challengeInvalid
		problem.WriteStatus(w, r, invID, http.StatusUnauthorized, "Unauthorized", "the bearer token is not valid (malformed, unknown or revoked)")
		return false
	case err != nil:
		g.log.Error("invocation refused: cannot check its token", "function", name, "invocation", invID, "err", err)
		problem.WriteStatus(w, r, invID, http.StatusServiceUnavailable, "Service Unavailable", "cannot check the bearer token now; retry")
		return false
	case !p.Role.Allows(duct.PermInvoke):
		problem.WriteStatus(w, r, invID, http.StatusForbidden, "Forbidden",
			"token "+strconv.Quote(p.Name)+" has role "+string(p.Role)+", which may not invoke functions (want invoke, deploy or admin)")
		return false
	}
	delete(r.Header, "Authorization")
	return true
}

var (
	challenge        = []string{`Bearer realm="duct"`}
	challengeInvalid = []string{`Bearer realm="duct", error="invalid_token"`}
)

// bearer returns the token of an Authorization header "Bearer <token>"
// (the scheme in any case).
func bearer(h []string) (string, bool) {
	if len(h) != 1 || len(h[0]) < 7 || !strings.EqualFold(h[0][:7], "Bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(h[0][7:])
	return tok, tok != ""
}

// splitPath splits "/fn/name/rest" into name and "/rest".
func splitPath(path string) (name, rest string, ok bool) {
	s, ok := strings.CutPrefix(path, Prefix)
	if !ok || s == "" {
		return "", "", false
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i:], true
	}
	return s, "/", true
}

// invocation is one request's record while it runs.
type invocation struct {
	id      string
	start   time.Time
	version *duct.Version
	lease   *pool.Lease
	status  int
	outcome duct.Outcome
	err     string
}

// invoke runs the request on p, uri being what the function is sent as
// the request target. admitted says whether its token was checked
// already. It returns the report it recorded (nil when none: the caller
// went away before an instance was free, or the function was removed),
// and whether the response must be cut short because it failed after its
// status line went out.
func (g *Gateway) invoke(w http.ResponseWriter, r *http.Request, p *pool.Pool, name, uri, invID string, admitted bool, hops int) (*duct.Report, bool) {
	inv := invocation{id: invID, start: time.Now()}
	var lease *pool.Lease
	var err error
	for range 3 {
		inv.version = p.Version()
		lease, err = p.Acquire(r.Context(), invID)
		if !errors.Is(err, pool.ErrRetired) {
			break
		}
		// A redeploy retired this version between lookup and acquire:
		// follow the route to the new one.
		if p = g.cfg.Router.Lookup(name); p == nil {
			problem.WriteStatus(w, r, invID, http.StatusNotFound, "Not Found", "no function named "+strconv.Quote(name))
			return nil, false
		}
		if !admitted && p.Version().Spec.Invoke == duct.InvokeToken {
			if !g.admit(w, r, name, invID) {
				return nil, false
			}
			admitted = true
		}
	}
	fm := p.Metrics()
	if err != nil {
		switch {
		case errors.Is(err, pool.ErrRetired):
			err = duct.ErrUnavailable
		case r.Context().Err() != nil:
			fm.Invocation(duct.OutcomeCanceled)
			return nil, false
		}
		inv.outcome = duct.OutcomeThrottled
		if errors.Is(err, duct.ErrInitFailed) {
			inv.outcome = duct.OutcomeInitFailed
			g.log.Warn("invocation failed: instance did not start", "function", name, "invocation", invID, "err", err)
		}
		inv.err = err.Error()
		status, _ := problem.Status(err)
		inv.status = status
		problem.Write(w, r, invID, err, clientDetail(err))
		return g.finish(&inv, fm), false
	}
	inv.lease = lease
	kill, abort := g.proxy(w, r, lease, uri, hops, &inv)
	lease.Release(kill)
	return g.finish(&inv, fm), abort
}

// loop refuses a request that would go past duct.MaxHops, and records it.
func (g *Gateway) loop(w http.ResponseWriter, r *http.Request, p *pool.Pool, invID string, hops int) {
	v := p.Version()
	inv := invocation{id: invID, start: time.Now(), version: v, status: http.StatusLoopDetected, outcome: duct.OutcomeLoop,
		err: "refused: hop " + strconv.Itoa(hops) + " of a chain of invocations (" + HeaderHops + "), more than " + strconv.Itoa(duct.MaxHops)}
	g.log.Warn("invocation refused: too many hops, a loop?", "function", v.Function, "invocation", invID, "hops", hops)
	problem.WriteStatus(w, r, invID, http.StatusLoopDetected, "Loop Detected",
		"this request would be hop "+strconv.Itoa(hops)+" of a chain of invocations ("+HeaderHops+"); at most "+
			strconv.Itoa(duct.MaxHops)+" are allowed, so that a function calling itself stops")
	g.finish(&inv, p.Metrics())
}

// hopsOf reads the caller's X-Duct-Hops and returns the count this
// request carries on: one more. ok is false for a malformed header.
func hopsOf(h http.Header) (hops int, ok bool) {
	v := h[HeaderHops]
	switch {
	case len(v) == 0:
		return 1, true
	case len(v) > 1:
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v[0]))
	if err != nil || n < 0 {
		return 0, false
	}
	return min(n, duct.MaxHops) + 1, true
}

// clientDetail is what a caller may see of a platform error: the first
// KiB of its message.
func clientDetail(err error) string {
	s := err.Error()
	if len(s) > 1024 {
		s = s[:1024] + "…"
	}
	return s
}

// proxy sends r to the leased instance and streams the answer back. It
// reports whether the instance must be killed, and whether the response
// must be cut short (it failed after the status line went out).
func (g *Gateway) proxy(w http.ResponseWriter, r *http.Request, lease *pool.Lease, uri string, hops int, inv *invocation) (kill, abort bool) {
	timeout := inv.version.Spec.Timeout.D()
	deadline := time.Now().Add(timeout)
	out := outbound(r, uri, inv.id, deadline, hops)
	var body *limitedBody
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		// Let the answer start while the request body still streams in.
		_ = http.NewResponseController(w).EnableFullDuplex()
		body = &limitedBody{r: r.Body, left: g.cfg.MaxRequestBody}
		out.Body = body
	}
	h := w.Header()
	delete(h, HeaderRequestID) // the function's headers go first
	resp, err := lease.Instance.Do(r.Context(), out, deadline, h)
	h[HeaderRequestID] = []string{inv.id}
	if err != nil {
		return g.failed(w, r, inv, lease, body, err), false
	}
	defer resp.Body.Close()
	if g.cfg.MaxResponseBody > 0 && resp.ContentLength > g.cfg.MaxResponseBody {
		clear(h)
		h[HeaderRequestID] = []string{inv.id}
		inv.outcome, inv.status, inv.err = duct.OutcomeError, http.StatusBadGateway, errResponseTooLarge.Error()
		problem.WriteStatus(w, r, inv.id, http.StatusBadGateway, "Response Too Large",
			"the function's response exceeds "+strconv.FormatInt(g.cfg.MaxResponseBody, 10)+" bytes")
		return false, false
	}
	w.WriteHeader(resp.Status)
	inv.status = resp.Status
	inv.outcome = duct.OutcomeSuccess
	if resp.Status >= 500 {
		inv.outcome = duct.OutcomeError
	}
	if err := g.copyBody(w, resp); err != nil {
		switch {
		case errors.Is(err, errResponseTooLarge):
			inv.outcome, inv.err = duct.OutcomeError, err.Error()
		case r.Context().Err() != nil:
			inv.outcome = duct.OutcomeCanceled
		case errors.Is(err, instance.ErrDeadline):
			inv.outcome, inv.err, kill = duct.OutcomeTimeout, "timed out after "+timeout.String()+" while streaming the response", soleTenant(inv)
		case lease.Instance.Exited():
			inv.outcome, inv.err = duct.OutcomeCrash, "instance "+lease.Instance.ExitReason()
		default:
			inv.outcome, inv.err = duct.OutcomeError, err.Error()
		}
		// The status line is out: the caller cuts the response short,
		// once the lease is released and the invocation recorded.
		return kill, true
	}
	return false, false
}

// failed answers a request whose exchange with the instance failed.
func (g *Gateway) failed(w http.ResponseWriter, r *http.Request, inv *invocation, lease *pool.Lease, body *limitedBody, err error) bool {
	timeout := inv.version.Spec.Timeout.D()
	switch {
	case body != nil && body.tooLarge:
		inv.outcome, inv.status, inv.err = duct.OutcomeError, http.StatusRequestEntityTooLarge, errRequestTooLarge.Error()
		problem.WriteStatus(w, r, inv.id, http.StatusRequestEntityTooLarge, "Content Too Large",
			"request body exceeds "+strconv.FormatInt(g.cfg.MaxRequestBody, 10)+" bytes")
		return false
	case r.Context().Err() != nil:
		inv.outcome = duct.OutcomeCanceled
		return false
	case errors.Is(err, instance.ErrDeadline):
		inv.outcome, inv.status = duct.OutcomeTimeout, http.StatusGatewayTimeout
		inv.err = "function did not answer within its timeout of " + timeout.String()
		problem.Write(w, r, inv.id, duct.ErrTimeout, inv.err)
		return soleTenant(inv)
	}
	// The instance broke the connection: it crashed, or exited.
	select {
	case <-lease.Instance.Done():
	case <-time.After(50 * time.Millisecond):
	}
	inv.outcome, inv.status = duct.OutcomeCrash, http.StatusBadGateway
	if lease.Instance.OOMKilled() {
		inv.outcome = duct.OutcomeMemory
		inv.err = "the function exceeded its memory limit of " + inv.version.Spec.Memory.String() + " and was killed"
		problem.Write(w, r, inv.id, duct.ErrMemoryLimit, inv.err)
		return true
	}
	if lease.Instance.Exited() {
		inv.err = "instance " + lease.Instance.ExitReason() + " while handling the request"
	} else {
		inv.err = "instance closed the connection: " + err.Error()
	}
	problem.Write(w, r, inv.id, duct.ErrCrashed, inv.err)
	return soleTenant(inv)
}

// soleTenant reports whether a failed request had its instance to itself:
// only then is the instance killed and replaced (it may be stuck). With
// concurrency above one, killing it would fail its other requests too; the
// failed request's connection is closed instead.
func soleTenant(inv *invocation) bool { return inv.version.Spec.Concurrency == 1 }

// finish records the invocation: its report in the log, its metrics. It
// returns the report.
func (g *Gateway) finish(inv *invocation, fm *metrics.Function) *duct.Report {
	d := time.Since(inv.start)
	rep := &duct.Report{
		Invocation:     inv.id,
		Function:       inv.version.Function,
		Version:        inv.version.Number,
		Start:          inv.start,
		Duration:       d,
		BilledDuration: billed(d),
		MemorySize:     inv.version.Spec.Memory,
		Status:         inv.status,
		Outcome:        inv.outcome,
		Error:          inv.err,
	}
	if l := inv.lease; l != nil {
		rep.Instance = l.Instance.ID
		rep.QueueWait = l.QueueWait
		rep.MaxMemoryUsed = duct.ByteSize(l.Instance.PeakMemoryCached())
		if l.Cold {
			rep.InitDuration = l.InitDuration
		}
	}
	fm.Duration.Observe(d.Seconds())
	fm.Invocation(inv.outcome)
	if g.cfg.Logs != nil {
		g.cfg.Logs.Log(duct.LogEntry{Time: rep.Start.Add(d), Function: rep.Function, Version: rep.Version,
			Instance: rep.Instance, Invocation: rep.Invocation, Stream: duct.LogReport, Report: rep})
	}
	return rep
}

func billed(d time.Duration) time.Duration {
	g := duct.BillingGranularity
	return (d + g - 1) / g * g
}

// bufPool holds copy buffers for response bodies.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (g *Gateway) copyBody(w http.ResponseWriter, resp *instance.Response) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	flush := resp.ContentLength < 0 // streamed: pass chunks on as they come
	fl, _ := w.(http.Flusher)
	var n int64
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			n += int64(k)
			if g.cfg.MaxResponseBody > 0 && n > g.cfg.MaxResponseBody {
				return errResponseTooLarge
			}
			if _, werr := w.Write(buf[:k]); werr != nil {
				return werr
			}
			if flush && fl != nil {
				fl.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
