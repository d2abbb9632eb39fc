package gateway

import (
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/instance"
)

// hopByHopHeaders belong to one connection and are not forwarded
// (RFC 9110 section 7.6.1).
var hopByHopHeaders = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Connection":    true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

// outbound builds the request to the instance from the client's, uri
// being the request target. The client's header map is reused: the
// handler owns it.
func outbound(r *http.Request, uri, invID string, deadline time.Time, hops int) *instance.Request {
	h := r.Header
	clean(h)
	h[HeaderInvocation] = []string{invID}
	h[HeaderDeadline] = []string{strconv.FormatInt(deadline.UnixMilli(), 10)}
	h[HeaderHops] = hopValues[min(max(hops, 0), duct.MaxHops)]
	forwarded(h, r)
	return &instance.Request{Method: r.Method, URI: uri, Host: r.Host, Header: h, ContentLength: r.ContentLength}
}

// hopValues holds X-Duct-Hops values, so that requests share them.
var hopValues = func() (v [duct.MaxHops + 1][]string) {
	for i := range v {
		v[i] = []string{strconv.Itoa(i)}
	}
	return v
}()

// clean removes what the function must not receive: hop-by-hop headers
// (those the Connection header names too), Expect, and Duct's own
// X-Duct-* headers, which only Duct sets.
func clean(h http.Header) {
	if c := h["Connection"]; len(c) > 0 {
		for _, v := range c {
			for _, f := range strings.Split(v, ",") {
				if f = textproto.TrimString(f); f != "" {
					h.Del(f)
				}
			}
		}
	}
	for k := range h {
		if hopByHopHeaders[k] || strings.HasPrefix(k, "X-Duct-") || k == "Expect" {
			delete(h, k)
		}
	}
}

// forwarded adds the caller's address to X-Forwarded-For and sets
// X-Forwarded-Proto unless the caller did.
func forwarded(h http.Header, r *http.Request) {
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h["X-Forwarded-For"] = []string{ip}
	}
	if _, ok := h["X-Forwarded-Proto"]; !ok {
		if r.TLS != nil {
			h["X-Forwarded-Proto"] = httpsProto
		} else {
			h["X-Forwarded-Proto"] = httpProto
		}
	}
}

// target is the request target the function is sent: the path after
// /fn/{name} (rest) keeping the client's escaping, and the query.
func target(r *http.Request, rest string) string {
	if r.URL.RawQuery != "" {
		return escapedRest(r, rest) + "?" + r.URL.RawQuery
	}
	return escapedRest(r, rest)
}

// escapedRest is rest as the client escaped it. Function names need no
// escaping, so the prefix has the same length in both forms.
func escapedRest(r *http.Request, rest string) string {
	switch {
	case r.URL.RawPath != "" && !strings.HasPrefix(r.URL.Path, Prefix):
		// An HTTP route: the function sees rest, escaped afresh.
		return (&url.URL{Path: rest}).EscapedPath()
	case r.URL.RawPath != "":
		esc := r.URL.EscapedPath()
		if i := strings.IndexByte(esc[min(len(Prefix), len(esc)):], '/'); i >= 0 {
			return esc[len(Prefix)+i:]
		}
		return rest
	case needsEscape(rest):
		return (&url.URL{Path: rest}).EscapedPath()
	}
	return rest
}

var (
	httpProto  = []string{"http"}
	httpsProto = []string{"https"}
)

// needsEscape reports whether a decoded path has bytes that must be
// escaped on the wire.
func needsEscape(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%' {
			return true
		}
	}
	return false
}

// limitedBody passes the client's body on and stops it at the limit.
type limitedBody struct {
	r        io.ReadCloser
	left     int64 // negative: unlimited
	tooLarge bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return b.r.Read(p)
	}
	if b.left == 0 {
		// Probe for more: one byte past the limit is too large.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			b.tooLarge = true
			return 0, errRequestTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.r.Close() }
