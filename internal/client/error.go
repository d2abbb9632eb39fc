package client

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/duct-dev/duct"
)

// Error is a failure the server reported: an RFC 9457 problem document,
// with the build log when a deploy failed to build. It matches duct's
// sentinel errors by status with errors.Is (404 is duct.ErrNotFound, 422
// duct.ErrBuildFailed, and so on).
type Error struct {
	Status    int    // HTTP status
	Title     string // short, e.g. "Not Found"
	Detail    string // what went wrong, for people
	Type      string // problem type URI; "about:blank" for plain statuses
	Instance  string // the request path
	RequestID string // the server's id for the request; its log has more
	BuildLog  string // the build's output, when a deploy failed to build
}

// Error returns the detail, or the status and title when the server gave
// no detail.
func (e *Error) Error() string {
	if e.Detail != "" {
		return e.Detail
	}
	title := e.Title
	if title == "" {
		title = http.StatusText(e.Status)
	}
	return strconv.Itoa(e.Status) + " " + title
}

// statusErrors maps statuses back to the sentinel errors the server
// mapped to them.
var statusErrors = map[int]error{
	http.StatusBadRequest:            duct.ErrInvalid,
	http.StatusUnauthorized:          duct.ErrUnauthorized,
	http.StatusForbidden:             duct.ErrForbidden,
	http.StatusNotFound:              duct.ErrNotFound,
	http.StatusConflict:              duct.ErrConflict,
	http.StatusRequestEntityTooLarge: duct.ErrTooLarge,
	http.StatusUnprocessableEntity:   duct.ErrBuildFailed,
	http.StatusTooManyRequests:       duct.ErrOverloaded,
	http.StatusServiceUnavailable:    duct.ErrUnavailable,
	http.StatusGatewayTimeout:        duct.ErrTimeout,
}

// Is reports whether target is the sentinel error for e's status.
func (e *Error) Is(target error) bool {
	s, ok := statusErrors[e.Status]
	return ok && s == target
}

// problemDoc is the wire form of a problem document, build log included.
type problemDoc struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Instance  string `json:"instance"`
	RequestID string `json:"requestId"`
	BuildLog  string `json:"buildLog"`
}

func (p problemDoc) toError(status int) *Error {
	if p.Status == 0 {
		p.Status = status
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	return &Error{Status: p.Status, Title: p.Title, Detail: p.Detail, Type: p.Type,
		Instance: p.Instance, RequestID: p.RequestID, BuildLog: p.BuildLog}
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// readError turns an error answer into an *Error: a problem document if
// the server sent one, else the status and the start of the body.
func readError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		var p problemDoc
		if json.Unmarshal(body, &p) == nil && (p.Title != "" || p.Detail != "") {
			e := p.toError(resp.StatusCode)
			e.Status = resp.StatusCode
			if e.RequestID == "" {
				e.RequestID = resp.Header.Get("X-Request-Id")
			}
			return e
		}
	}
	e := &Error{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode),
		Instance: resp.Request.URL.Path, RequestID: resp.Header.Get("X-Request-Id")}
	if s := strings.TrimSpace(string(body)); s != "" && len(s) <= 512 && !strings.Contains(s, "<") {
		e.Detail = s
	}
	return e
}
