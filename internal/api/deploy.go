package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/deploy"
	"github.com/duct-dev/duct/internal/problem"
)

// DeployEvent is one line of a streamed deploy (Accept:
// application/x-ndjson): progress, then a final line with either the
// result or the error.
type DeployEvent struct {
	deploy.Event
	Result *DeployResult `json:"result,omitempty"`
	Error  *DeployError  `json:"error,omitempty"`
}

// DeployResult is a successful deploy.
type DeployResult struct {
	deploy.Result
	URL string `json:"url,omitempty"`
}

// DeployError is a failed deploy.
type DeployError struct {
	problem.Details
	BuildLog string `json:"buildLog,omitempty"`
}

// maxSpec bounds the spec part of a deploy.
const maxSpec = 64 << 10

// deploy accepts multipart/form-data with an optional "spec" part
// (duct.yaml-shaped overrides, YAML or JSON) and a "source" part (tar.gz,
// tar or zip), in either order, or a bare archive as the body.
func (a *API) deploy(w http.ResponseWriter, r *http.Request) error {
	n, err := name(r)
	if err != nil {
		return err
	}
	if r.ContentLength > a.cfg.MaxUpload {
		return fmt.Errorf("upload of %d bytes exceeds %d: %w", r.ContentLength, a.cfg.MaxUpload, duct.ErrTooLarge)
	}
	body := &limitReader{r: r.Body, left: a.cfg.MaxUpload, limit: a.cfg.MaxUpload}
	var spec []byte
	var source io.Reader = body
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		// The parts may come in any order: the source is spooled to a
		// file so that a spec after it still applies.
		spool, sp, err := readParts(multipart.NewReader(body, params["boundary"]))
		if spool != nil {
			defer func() {
				spool.Close()
				os.Remove(spool.Name())
			}()
		}
		if err != nil {
			return bodyError(body, err)
		}
		source, spec = spool, sp
	}
	stream := strings.Contains(r.Header.Get("Accept"), "application/x-ndjson")
	ctx := r.Context()
	if !stream {
		res, err := a.cfg.Deploy.Deploy(ctx, n, source, spec, nil)
		if err != nil {
			return bodyError(body, err)
		}
		if err := a.applied(r, n, res); err != nil {
			return err
		}
		status := http.StatusCreated
		if res.Unchanged {
			status = http.StatusOK
		}
		return writeJSON(w, status, a.result(r, n, res))
	}

	// The archive is still being read when progress lines go out: without
	// full duplex, net/http would drain and close the request body at the
	// first write.
	if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	var mu sync.Mutex // guards enc: progress comes from build goroutines
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	send := func(ev DeployEvent) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(ev)
		if fl != nil {
			fl.Flush()
		}
	}
	res, err := a.cfg.Deploy.Deploy(ctx, n, source, spec, func(e deploy.Event) { send(DeployEvent{Event: e}) })
	if err == nil {
		err = a.applied(r, n, res)
	}
	if err != nil {
		err = bodyError(body, err)
		status, title := problem.Status(err)
		reqID := w.Header().Get("X-Request-Id")
		detail := err.Error()
		if status >= 500 {
			a.log.Error("deploy", "function", n, "request", reqID, "err", err)
			detail = "internal error; see the server log for request " + reqID
		}
		de := &DeployError{Details: problem.Details{Type: "about:blank", Title: title, Status: status, Detail: detail,
			Instance: r.URL.Path, RequestID: reqID}}
		var be *duct.BuildError
		if errors.As(err, &be) {
			de.BuildLog = be.Log
		}
		send(DeployEvent{Event: deploy.Event{Phase: "error"}, Error: de})
		return nil
	}
	send(DeployEvent{Event: deploy.Event{Phase: "result"}, Result: a.result(r, n, res)})
	return nil
}

// readParts reads a deploy's multipart body: an optional spec part and
// exactly one source part, spooled to a temporary file.
func readParts(mr *multipart.Reader) (spool *os.File, spec []byte, err error) {
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return spool, nil, err
		}
		name := part.FormName()
		if seen[name] {
			return spool, nil, duct.Invalid("body", "multipart upload has two %q parts", name)
		}
		seen[name] = true
		switch name {
		case "spec":
			spec, err = io.ReadAll(io.LimitReader(part, maxSpec+1))
			if err != nil {
				return spool, nil, err
			}
			if len(spec) > maxSpec {
				return spool, nil, duct.Invalid("spec", "larger than %d bytes", maxSpec)
			}
		case "source":
			if spool, err = os.CreateTemp("", "duct-upload-"); err != nil {
				return nil, nil, err
			}
			if _, err := io.Copy(spool, part); err != nil {
				return spool, nil, err
			}
			if _, err := spool.Seek(0, io.SeekStart); err != nil {
				return spool, nil, err
			}
		default:
			return spool, nil, duct.Invalid("body", "unexpected multipart part %q: want spec and source", name)
		}
	}
	if spool == nil {
		return nil, nil, duct.Invalid("body", "multipart upload has no source part")
	}
	return spool, spec, nil
}

func (a *API) applied(r *http.Request, name string, res *deploy.Result) error {
	if a.cfg.Applied == nil {
		return nil
	}
	return a.cfg.Applied(r.Context(), name)
}

func (a *API) result(r *http.Request, name string, res *deploy.Result) *DeployResult {
	out := &DeployResult{Result: *res}
	if a.cfg.BaseURL != nil {
		out.URL = a.cfg.BaseURL(r) + "/fn/" + name
	}
	out.Version.BuildLog = ""
	return out
}

// limitReader fails reads past the upload limit.
type limitReader struct {
	r           io.Reader
	left, limit int64
	exceeded    bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		l.exceeded = true
		return 0, fmt.Errorf("upload: %w", duct.ErrTooLarge)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// bodyError reports an upload over the limit as too large, whatever the
// archive reader made of the cut.
func bodyError(l *limitReader, err error) error {
	if l.exceeded {
		return fmt.Errorf("upload exceeds %d bytes: %w", l.limit, duct.ErrTooLarge)
	}
	return err
}
