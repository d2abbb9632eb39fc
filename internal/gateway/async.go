package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/problem"
)

// Queue stores asynchronous invocations. Enqueue returns once inv is
// durably stored, with the id to poll: inv.ID, or the id of an earlier
// submission to the same function with the same idempotency key. Errors
// match duct's sentinels (duct.ErrInvalid, duct.ErrUnavailable…).
type Queue interface {
	Enqueue(ctx context.Context, inv *duct.QueuedInvocation) (id string, err error)
}

// InvocationsPath is where the API serves invocation records: the
// Location of an accepted asynchronous invocation is InvocationsPath + id.
const InvocationsPath = "/api/v1/invocations/"

// Headers of asynchronous invocations (RFC 7240 and the IETF idempotency
// key draft).
const (
	headerPrefer         = "Prefer"
	headerIdempotencyKey = "Idempotency-Key"
	maxIdempotencyKey    = 255
)

// enqueueTimeout bounds how long a submission waits for the store.
const enqueueTimeout = 15 * time.Second

// prefersAsync reports whether the Prefer header asks for respond-async.
func prefersAsync(h http.Header) bool {
	for _, v := range h[headerPrefer] {
		for _, pref := range strings.Split(v, ",") {
			tok, _, _ := strings.Cut(pref, ";")
			tok, _, _ = strings.Cut(tok, "=")
			if strings.EqualFold(strings.TrimSpace(tok), "respond-async") {
				return true
			}
		}
	}
	return false
}

// submit stores the request as an asynchronous invocation and answers 202
// Accepted with its location, or a problem document when it cannot.
func (g *Gateway) submit(w http.ResponseWriter, r *http.Request, name, rest, invID string, hops int) {
	limit := int64(duct.MaxAsyncBody)
	tooLarge := func() {
		problem.WriteStatus(w, r, invID, http.StatusRequestEntityTooLarge, "Content Too Large",
			"the body of an asynchronous invocation exceeds "+strconv.FormatInt(limit, 10)+" bytes")
	}
	if r.ContentLength > limit {
		tooLarge()
		return
	}
	key := r.Header.Get(headerIdempotencyKey)
	if !validKey(key) {
		problem.WriteStatus(w, r, invID, http.StatusBadRequest, "Bad Request",
			headerIdempotencyKey+" must be 1 to "+strconv.Itoa(maxIdempotencyKey)+" printable ASCII characters")
		return
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
		switch {
		case int64(len(body)) > limit:
			tooLarge()
			return
		case err != nil:
			if r.Context().Err() == nil {
				problem.WriteStatus(w, r, invID, http.StatusBadRequest, "Bad Request", "reading the request body: "+err.Error())
			}
			return
		}
	}
	h := r.Header.Clone()
	clean(h)
	delete(h, "Authorization")
	delete(h, headerPrefer) // respond-async was for Duct
	forwarded(h, r)
	inv := &duct.QueuedInvocation{
		ID: invID, Function: name, Hops: hops, IdempotencyKey: key, SubmittedAt: time.Now().UTC(),
		Request: duct.InvocationRequest{Method: r.Method, Path: escapedRest(r, rest), Query: r.URL.RawQuery, Host: r.Host, Header: h, Body: body},
	}
	ctx, cancel := context.WithTimeout(r.Context(), enqueueTimeout)
	defer cancel()
	qid, err := g.cfg.Queue.Enqueue(ctx, inv)
	if err != nil {
		status, _ := problem.Status(err)
		detail := clientDetail(err)
		if status >= 500 {
			g.log.Error("asynchronous invocation not queued", "function", name, "invocation", invID, "err", err)
			err, detail = duct.ErrUnavailable, "cannot queue the invocation now; retry"
		}
		problem.Write(w, r, invID, err, detail)
		return
	}
	loc := InvocationsPath + qid
	wh := w.Header()
	wh["Location"] = []string{loc}
	wh["Preference-Applied"] = []string{"respond-async"}
	wh["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusAccepted)
	b, _ := json.Marshal(accepted{ID: qid, Location: loc})
	w.Write(append(b, '\n'))
}

// accepted is the body of a 202 answer.
type accepted struct {
	ID       string `json:"id"`
	Location string `json:"location"`
}

// validKey reports whether an Idempotency-Key is absent or acceptable.
func validKey(k string) bool {
	if len(k) > maxIdempotencyKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// Version is the version serving function name on this node, or nil.
func (g *Gateway) Version(name string) *duct.Version {
	if p := g.cfg.Router.Lookup(name); p != nil {
		return p.Version()
	}
	return nil
}

// Attempt runs one attempt of a queued invocation as a synchronous request
// runs (a slot on the function's pool, its timeout, a report in its log
// under the invocation's id) and writes the answer to w: the function's,
// or Duct's problem document. It returns the attempt's report, or an
// error when nothing ran: duct.ErrNotFound (no such function), or ctx's
// error (it ended before an instance was free).
func (g *Gateway) Attempt(ctx context.Context, w http.ResponseWriter, inv *duct.QueuedInvocation) (*duct.Report, error) {
	q := inv.Request
	r := (&http.Request{
		Method: q.Method, URL: &url.URL{Path: Prefix + inv.Function, RawQuery: q.Query}, Host: q.Host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header(q.Header).Clone(), Body: http.NoBody,
	}).WithContext(ctx)
	if r.Header == nil {
		r.Header = http.Header{}
	}
	if len(q.Body) > 0 {
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(q.Body)), int64(len(q.Body))
	}
	p := g.cfg.Router.Lookup(inv.Function)
	if p == nil {
		problem.WriteStatus(w, r, inv.ID, http.StatusNotFound, "Not Found", "no function named "+strconv.Quote(inv.Function))
		return nil, duct.ErrNotFound
	}
	uri := q.Path
	if q.Query != "" {
		uri += "?" + q.Query
	}
	// The token was checked when the invocation was submitted.
	rep, _ := g.invoke(w, r, p, inv.Function, uri, inv.ID, true, inv.Hops)
	if rep == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, duct.ErrNotFound
	}
	return rep, nil
}
