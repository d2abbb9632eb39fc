package client_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/client"
	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/deploy"
)

func newClient(t *testing.T, url, token string) *client.Client {
	t.Helper()
	c, err := client.New(url, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"ftp://x", "http://", "://"} {
		if _, err := client.New(u, ""); err == nil {
			t.Errorf("New(%q) = nil error", u)
		}
	}
	c, err := client.New("127.0.0.1:9/", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.BaseURL(), "http://127.0.0.1:9"; got != want {
		t.Errorf("BaseURL = %q, want %q", got, want)
	}
}

// TestErrorsMapToSentinels checks that problem documents come back as
// *Error values matching the sentinel for their status.
func TestErrorsMapToSentinels(t *testing.T) {
	tests := []struct {
		status int
		want   error
	}{
		{400, duct.ErrInvalid},
		{401, duct.ErrUnauthorized},
		{403, duct.ErrForbidden},
		{404, duct.ErrNotFound},
		{409, duct.ErrConflict},
		{413, duct.ErrTooLarge},
		{422, duct.ErrBuildFailed},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(tt.status)
			json.NewEncoder(w).Encode(map[string]any{
				"type": "about:blank", "title": http.StatusText(tt.status), "status": tt.status,
				"detail": "it went wrong", "requestId": "req-1", "buildLog": "line 1\n",
			})
		}))
		_, err := newClient(t, srv.URL, "").Function(context.Background(), "hello")
		srv.Close()
		if !errors.Is(err, tt.want) {
			t.Errorf("status %d: error %v does not match %v", tt.status, err, tt.want)
		}
		var ce *client.Error
		if !errors.As(err, &ce) {
			t.Fatalf("status %d: %T is not *client.Error", tt.status, err)
		}
		if ce.Status != tt.status || ce.Detail != "it went wrong" || ce.RequestID != "req-1" || ce.BuildLog != "line 1\n" {
			t.Errorf("status %d: got %+v", tt.status, ce)
		}
		if ce.Error() != "it went wrong" {
			t.Errorf("Error() = %q", ce.Error())
		}
	}
}

func TestErrorWithoutProblemDocument(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream exploded", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := newClient(t, srv.URL, "").Functions(context.Background())
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 502 || ce.Detail != "upstream exploded" {
		t.Fatalf("got %#v", err)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	_, err := newClient(t, url, "").Functions(context.Background())
	if !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("error %v does not match ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), "cannot reach the Duct server at "+url) {
		t.Errorf("message %q does not say which server", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newClient(t, url, "").Functions(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: got %v, want context.Canceled", err)
	}
}

// TestDeployProtocol checks the request Deploy sends (token, multipart
// order, Accept) and how it reads the streamed answer.
func TestDeployProtocol(t *testing.T) {
	type seen struct {
		auth, accept string
		parts        []string
		spec, source string
	}
	var got seen
	final := `{"phase":"result","result":{"version":{"function":"hello","number":3,"spec":{"name":"hello"}},"unchanged":false,"url":"http://x/fn/hello"}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/functions/hello/versions" {
			http.NotFound(w, r)
			return
		}
		got.auth, got.accept = r.Header.Get("Authorization"), r.Header.Get("Accept")
		_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			got.parts = append(got.parts, p.FormName())
			switch p.FormName() {
			case "spec":
				got.spec = string(b)
			case "source":
				got.source = string(b)
			}
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"phase":"extract"}`+"\n"+`{"phase":"log","message":"compiling"}`+"\n"+final+"\n")
	}))
	defer srv.Close()

	var events []deploy.Event
	res, err := newClient(t, srv.URL, "s3cret").Deploy(context.Background(), "hello",
		strings.NewReader("ARCHIVE"), []byte(`{"memory":"512Mi"}`), func(e deploy.Event) { events = append(events, e) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Version.Number != 3 || res.URL != "http://x/fn/hello" {
		t.Errorf("result = %+v", res)
	}
	if got.auth != "Bearer s3cret" || !strings.Contains(got.accept, "application/x-ndjson") {
		t.Errorf("headers: auth %q accept %q", got.auth, got.accept)
	}
	if strings.Join(got.parts, ",") != "spec,source" || got.spec != `{"memory":"512Mi"}` || got.source != "ARCHIVE" {
		t.Errorf("body: %+v", got)
	}
	if len(events) != 2 || events[1].Phase != "log" || events[1].Message != "compiling" {
		t.Errorf("events = %+v", events)
	}
}

func TestDeployStreamedFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"phase":"build"}`+"\n"+
			`{"phase":"error","error":{"type":"about:blank","title":"Build Failed","status":422,"detail":"compile failed","requestId":"r9","buildLog":"main.go:3: oops\n"}}`+"\n")
	}))
	defer srv.Close()
	_, err := newClient(t, srv.URL, "").Deploy(context.Background(), "hello", strings.NewReader("x"), nil, nil)
	var ce *client.Error
	if !errors.As(err, &ce) || !errors.Is(err, duct.ErrBuildFailed) {
		t.Fatalf("got %v, want a build failure", err)
	}
	if ce.BuildLog != "main.go:3: oops\n" || ce.RequestID != "r9" || ce.Detail != "compile failed" {
		t.Errorf("error = %+v", ce)
	}
}

func TestDeployStreamCutShort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"phase":"build"}`+"\n")
	}))
	defer srv.Close()
	_, err := newClient(t, srv.URL, "").Deploy(context.Background(), "hello", strings.NewReader("x"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "ended without a result") {
		t.Fatalf("got %v", err)
	}
}

// TestDeployRefusedEarly checks that an answer sent before the upload is
// read (a bad name, a missing token) comes back as that answer.
func TestDeployRefusedEarly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"type":"about:blank","title":"Unauthorized","status":401,"detail":"unauthorized"}`)
	}))
	defer srv.Close()
	big := bytes.Repeat([]byte("x"), 8<<20)
	_, err := newClient(t, srv.URL, "").Deploy(context.Background(), "hello", bytes.NewReader(big), nil, nil)
	if !errors.Is(err, duct.ErrUnauthorized) {
		t.Fatalf("got %v, want unauthorized", err)
	}
}

func TestLogsQueryAndDecoding(t *testing.T) {
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"time":"2026-11-30T11:00:00Z","function":"hello","stream":"stdout","message":"one"}`+"\n")
		io.WriteString(w, `{"time":"2026-11-30T11:00:01Z","function":"hello","stream":"report","report":{"invocation":"abc","duration":1500000}}`+"\n")
	}))
	defer srv.Close()
	var got []duct.LogEntry
	err := newClient(t, srv.URL, "").Logs(context.Background(), "hello",
		client.LogQuery{Since: "10m", Tail: 5, Invocation: "abc"}, func(e duct.LogEntry) error {
			got = append(got, e)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if query != "invocation=abc&since=10m&tail=5" {
		t.Errorf("query = %q", query)
	}
	if len(got) != 2 || got[0].Message != "one" || got[1].Report == nil || got[1].Report.Duration != 1500*time.Microsecond {
		t.Errorf("entries = %+v", got)
	}
	stop := errors.New("stop")
	err = newClient(t, srv.URL, "").Logs(context.Background(), "hello", client.LogQuery{}, func(duct.LogEntry) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("callback error: got %v", err)
	}
}

// TestAgainstServer deploys to a real in-process server, with a bundle
// large enough that the server streams progress while still reading it.
func TestAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	d, err := daemon.New(daemon.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), NoSync: true, AdminToken: "tok", Spares: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	ctx := context.Background()
	c := newClient(t, d.URL(), "tok")

	filler := make([]byte, 300<<10)
	rand.Read(filler)
	archive := tarGz(t, map[string]string{
		"index.js":   `exports.handler = async (req, res) => { console.log("hi", req.path); res.send("hello from node"); };`,
		"filler.txt": hex.EncodeToString(filler),
	})
	var phases []string
	res, err := c.Deploy(ctx, "hello", bytes.NewReader(archive), []byte(`{"memory": "128Mi"}`), func(e deploy.Event) { phases = append(phases, e.Phase) })
	if err != nil {
		t.Fatalf("deploy: %v (phases %v)", err, phases)
	}
	if res.Version.Number != 1 || res.Version.Spec.Memory != 128*duct.MiB || res.URL != d.URL()+"/fn/hello" {
		t.Errorf("result = %+v", res)
	}
	if len(phases) == 0 {
		t.Error("no progress events")
	}

	// The server's default invoke mode is token: the gateway wants one.
	resp, err := c.Invoke(ctx, "hello", "GET", "/x?y=1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("invoke without a token: %d, want 401", resp.StatusCode)
	}
	resp, err = c.Invoke(ctx, "hello", "GET", "/x?y=1", http.Header{"Authorization": {"Bearer tok"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello from node" {
		t.Errorf("invoke: %d %q", resp.StatusCode, body)
	}

	fns, err := c.Functions(ctx)
	if err != nil || len(fns) != 1 || fns[0].Name != "hello" {
		t.Errorf("Functions = %+v, %v", fns, err)
	}
	vs, err := c.Versions(ctx, "hello")
	if err != nil || len(vs) != 1 || !vs[0].Active {
		t.Errorf("Versions = %+v, %v", vs, err)
	}
	if _, err := c.Rollback(ctx, "hello", 0); !errors.Is(err, duct.ErrConflict) {
		t.Errorf("rollback with one version: got %v, want conflict", err)
	}
	if _, err := c.Function(ctx, "nope"); !errors.Is(err, duct.ErrNotFound) {
		t.Errorf("Function(nope): got %v, want not found", err)
	}
	if _, err := newClient(t, d.URL(), "").Functions(ctx); !errors.Is(err, duct.ErrUnauthorized) {
		t.Errorf("no token: got %v", err)
	}
	if _, err := newClient(t, d.URL(), "wrong").Functions(ctx); !errors.Is(err, duct.ErrUnauthorized) {
		t.Errorf("wrong token: got %v", err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Version == "" {
		t.Errorf("Status = %+v, %v", st, err)
	}

	_, err = c.Deploy(ctx, "broken", bytes.NewReader(tarGz(t, map[string]string{"main.go": "package function\n\nfunc Handle() { undefinedThing() }\n"})), nil, nil)
	var ce *client.Error
	if !errors.As(err, &ce) || !errors.Is(err, duct.ErrBuildFailed) || !strings.Contains(ce.BuildLog+ce.Detail, "undefinedThing") {
		t.Errorf("broken deploy: %v", err)
	}
	if err := c.Delete(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "hello"); !errors.Is(err, duct.ErrNotFound) {
		t.Errorf("second delete: got %v", err)
	}
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}
