package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"

	"github.com/duct-dev/duct/internal/api"
	"github.com/duct-dev/duct/internal/deploy"
)

// Deploy uploads a source archive (tar.gz, tar or zip) as a new version of
// the function name and waits for the build. spec, if not empty, is a
// duct.yaml-shaped document (YAML or JSON) whose fields win over the
// archive's duct.yaml. progress, if not nil, is called with each step the
// server reports, build output lines included (phase "log").
//
// The archive is streamed, never held in memory. A build that fails comes
// back as an *Error matching duct.ErrBuildFailed, with the build's output
// in BuildLog.
func (c *Client) Deploy(ctx context.Context, name string, archive io.Reader, spec []byte, progress func(deploy.Event)) (*api.DeployResult, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(writeDeployBody(mw, archive, spec))
	}()
	// The writer stops when the transport stops reading: on an early
	// answer, a failure or cancellation.
	defer func() {
		pr.CloseWithError(errors.New("deploy request finished"))
		<-done
	}()

	req, err := c.newRequest(ctx, http.MethodPost, functionPath(name, "versions"), nil, pr)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/x-ndjson, application/json;q=0.5")
	// Asking for 100-continue lets the server stream progress while it
	// still reads the upload: without it, Go's HTTP/1.1 server drains and
	// closes an unread request body when the handler first flushes its
	// answer. It also spares uploading a body the server refuses anyway.
	req.Header.Set("Expect", "100-continue")
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/x-ndjson" {
		// A server that does not stream answers with the result alone.
		var res api.DeployResult
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			return nil, fmt.Errorf("deploy %s: reading the answer: %w", name, c.readFailure(ctx, err))
		}
		return &res, nil
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev api.DeployEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("deploy %s: the progress stream ended without a result: %w", name, c.readFailure(ctx, err))
		}
		switch {
		case ev.Result != nil:
			return ev.Result, nil
		case ev.Error != nil:
			p := ev.Error
			return nil, &Error{Status: p.Status, Title: p.Title, Detail: p.Detail, Type: p.Type,
				Instance: p.Instance, RequestID: p.RequestID, BuildLog: p.BuildLog}
		case progress != nil:
			progress(ev.Event)
		}
	}
}

// writeDeployBody writes the multipart body: the spec part (if any), then
// the source part, which the server requires to come last.
func writeDeployBody(mw *multipart.Writer, archive io.Reader, spec []byte) error {
	if len(spec) > 0 {
		w, err := mw.CreateFormField("spec")
		if err != nil {
			return err
		}
		if _, err := w.Write(spec); err != nil {
			return err
		}
	}
	w, err := mw.CreateFormFile("source", "source.tar.gz")
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, archive); err != nil {
		return fmt.Errorf("reading the source archive: %w", err)
	}
	return mw.Close()
}
