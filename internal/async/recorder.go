package async

import (
	"encoding/base64"
	"net/http"
	"unicode/utf8"

	"github.com/duct-dev/duct"
)

// recorder is the http.ResponseWriter an attempt answers into: it keeps
// the status, the headers and the first limit bytes of the body, and
// counts the rest.
type recorder struct {
	header http.Header
	status int
	body   []byte
	size   int64
	limit  int
}

func newRecorder(limit int) *recorder { return &recorder{header: http.Header{}, limit: limit} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.size += int64(len(p))
	if room := r.limit - len(r.body); room > 0 {
		r.body = append(r.body, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// result is what the record keeps of the answer: text as it is, anything
// else in base64.
func (r *recorder) result() *duct.InvocationResult {
	if r.status == 0 {
		return nil
	}
	res := &duct.InvocationResult{Status: r.status, Header: r.header, BodySize: r.size, Truncated: r.size > int64(len(r.body))}
	body := r.body
	if res.Truncated {
		// A cut may split a character: drop the broken tail.
		for i := 0; i < utf8.UTFMax && len(body) > 0 && !utf8.Valid(body); i++ {
			body = body[:len(body)-1]
		}
	}
	if utf8.Valid(body) {
		res.Body = string(body)
	} else {
		res.Body, res.BodyEncoding = base64.StdEncoding.EncodeToString(r.body), "base64"
	}
	return res
}
