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

func hopByHop(k string) bool { return hopByHopHeaders[k] }

// outbound builds the request to the instance from the client's. The
// client's header map is reused: the handler owns it.
func outbound(r *http.Request, rest, invID string, deadline time.Time) *http.Request {
	h := r.Header
	if c := h.Get("Connection"); c != "" {
		for _, f := range strings.Split(c, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for k := range h {
		if hopByHopHeaders[k] || strings.HasPrefix(k, "X-Duct-") || k == "Expect" {
			delete(h, k)
		}
	}
	h[HeaderInvocation] = []string{invID}
	h[HeaderDeadline] = []string{strconv.FormatInt(deadline.UnixMilli(), 10)}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h["X-Forwarded-For"] = []string{ip}
	}
	if _, ok := h["X-Forwarded-Host"]; !ok {
		h["X-Forwarded-Host"] = []string{r.Host}
	}
	if _, ok := h["X-Forwarded-Proto"]; !ok {
		proto := "http"
		if r.TLS != nil {
			proto = "https"
		}
		h["X-Forwarded-Proto"] = []string{proto}
	}
	u := &url.URL{Path: rest, RawQuery: r.URL.RawQuery}
	if r.URL.RawPath != "" {
		// Keep the client's escaping of the path suffix. Function names
		// need no escaping, so the prefix is the same in both forms.
		esc := r.URL.EscapedPath()
		if i := strings.Index(esc[min(len(Prefix), len(esc)):], "/"); i >= 0 {
			if raw := esc[len(Prefix)+i:]; raw != rest {
				u.RawPath = raw
			}
		}
	}
	out := &http.Request{
		Method:        r.Method,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          nil,
		ContentLength: r.ContentLength,
		Host:          r.Host,
	}
	return out
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
