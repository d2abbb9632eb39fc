// Package problem turns errors into HTTP responses: RFC 9457 problem
// details carrying the request id. It is the one place that maps Duct's
// sentinel errors to statuses, so the API and the gateway answer alike.
package problem

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/duct-dev/duct"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem document.
type Details struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"requestId,omitempty"`
}

func (d *Details) Error() string {
	if d.Detail != "" {
		return d.Title + ": " + d.Detail
	}
	return d.Title
}

// Status maps an error to its HTTP status and a short title.
func Status(err error) (int, string) {
	switch {
	case errors.Is(err, duct.ErrNotFound):
		return http.StatusNotFound, "Not Found"
	case errors.Is(err, duct.ErrBuildFailed):
		return http.StatusUnprocessableEntity, "Build Failed"
	case errors.Is(err, duct.ErrInvalid):
		return http.StatusBadRequest, "Bad Request"
	case errors.Is(err, duct.ErrConflict):
		return http.StatusConflict, "Conflict"
	case errors.Is(err, duct.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "Content Too Large"
	case errors.Is(err, duct.ErrUnauthorized):
		return http.StatusUnauthorized, "Unauthorized"
	case errors.Is(err, duct.ErrForbidden):
		return http.StatusForbidden, "Forbidden"
	case errors.Is(err, duct.ErrOverloaded):
		return http.StatusTooManyRequests, "Too Many Requests"
	case errors.Is(err, duct.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "Function Timed Out"
	case errors.Is(err, duct.ErrInitFailed):
		return http.StatusBadGateway, "Function Failed To Start"
	case errors.Is(err, duct.ErrCrashed):
		return http.StatusBadGateway, "Function Instance Crashed"
	case errors.Is(err, duct.ErrMemoryLimit):
		return http.StatusBadGateway, "Memory Limit Exceeded"
	case errors.Is(err, duct.ErrUnavailable), errors.Is(err, duct.ErrShuttingDown):
		return http.StatusServiceUnavailable, "Service Unavailable"
	}
	return http.StatusInternalServerError, "Internal Server Error"
}

// Write answers with a problem document for err. detail is what the
// client may see; internal errors should pass a generic detail and log
// the real one.
func Write(w http.ResponseWriter, r *http.Request, requestID string, err error, detail string) {
	status, title := Status(err)
	WriteStatus(w, r, requestID, status, title, detail)
}

// WriteStatus answers with a problem document of the given status.
func WriteStatus(w http.ResponseWriter, r *http.Request, requestID string, status int, title, detail string) {
	d := Details{Type: "about:blank", Title: title, Status: status, Detail: detail, RequestID: requestID}
	if r != nil {
		d.Instance = r.URL.Path
	}
	b, _ := json.Marshal(d)
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
