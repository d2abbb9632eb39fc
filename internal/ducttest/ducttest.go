// Package ducttest runs a real Duct server in process for tests: embedded
// JetStream on a temporary directory, the gateway and API on a loopback
// port, real Node.js, Python and Go instances. Helpers deploy functions
// from in-memory files and invoke them.
package ducttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/bundle"
	"github.com/duct-dev/duct/internal/daemon"
)

// AdminToken is the admin token of servers started by Start, unless an
// option changes it.
const AdminToken = "ducttest-admin-token"

// Server is an in-process Duct.
type Server struct {
	*daemon.Daemon
	Config daemon.Config
	URL    string
	// HTTP sends the server's admin token (Config.AdminToken) on every
	// request to /api/ that carries no Authorization header of its own.
	HTTP *http.Client
	t    testing.TB
}

// Start starts a server for the test and stops it at cleanup. opts adjust
// the configuration before start.
//
// The server accepts AdminToken, which Do, Get and DeployRaw send on API
// calls. Functions deploy as public unless their spec says otherwise
// (DefaultInvoke), so that tests of the gateway need no token; tests of
// access control set DefaultInvoke back to "" (the server's default,
// token) or deploy with invoke: token.
func Start(t testing.TB, opts ...func(*daemon.Config)) *Server {
	t.Helper()
	cfg := daemon.Config{
		Addr:          "127.0.0.1:0",
		DataDir:       t.TempDir(),
		ReapInterval:  100 * time.Millisecond,
		AdminToken:    AdminToken,
		DefaultInvoke: duct.InvokePublic,
		Logger:        testLogger(t),
	}
	for _, o := range opts {
		o(&cfg)
	}
	return StartConfig(t, cfg)
}

// WithPubSub is an option of Start: the server also serves Google Cloud
// Pub/Sub's gRPC API, on a free loopback port (Server.PubSubAddr).
func WithPubSub(c *daemon.Config) { c.PubSubAddr = "127.0.0.1:0" }

// StartConfig starts a server with exactly cfg.
func StartConfig(t testing.TB, cfg daemon.Config) *Server {
	t.Helper()
	d, err := daemon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start duct: %v", err)
	}
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &withToken{token: cfg.AdminToken, next: http.DefaultTransport}}
	s := &Server{Daemon: d, Config: cfg, URL: d.URL(), HTTP: hc, t: t}
	t.Cleanup(func() { s.Stop() })
	return s
}

// Stop shuts the server down (idempotent).
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.Shutdown(ctx)
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("DUCT_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Files is a source tree: relative path → content.
type Files map[string]string

// Archive packs files as a tar.gz bundle.
func Archive(t testing.TB, files Files) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := bundle.Pack(dir, &buf, bundle.DefaultSkip); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// DeployResponse is the API's answer to a deploy.
type DeployResponse struct {
	Status    int
	Version   duct.Version
	Unchanged bool
	URL       string
	Problem   map[string]any
}

// DeployRaw uploads an archive with an optional spec document and returns
// the API's answer, whatever it is.
func (s *Server) DeployRaw(name string, archive []byte, spec string) DeployResponse {
	s.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if spec != "" {
		w, _ := mw.CreateFormField("spec")
		io.WriteString(w, spec)
	}
	w, _ := mw.CreateFormFile("source", "source.tar.gz")
	w.Write(archive)
	mw.Close()
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/functions/"+name+"/versions", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := s.HTTP.Do(req)
	if err != nil {
		s.t.Fatalf("deploy %s: %v", name, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := DeployResponse{Status: resp.StatusCode}
	if resp.StatusCode >= 300 {
		json.Unmarshal(raw, &out.Problem)
		return out
	}
	var res struct {
		Version   duct.Version `json:"version"`
		Unchanged bool         `json:"unchanged"`
		URL       string       `json:"url"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		s.t.Fatalf("deploy %s: decode %q: %v", name, raw, err)
	}
	out.Version, out.Unchanged, out.URL = res.Version, res.Unchanged, res.URL
	return out
}

// Deploy deploys files as function name and fails the test on error.
func (s *Server) Deploy(name string, files Files, spec string) duct.Version {
	s.t.Helper()
	r := s.DeployRaw(name, Archive(s.t, files), spec)
	if r.Status >= 300 {
		s.t.Fatalf("deploy %s: status %d: %v", name, r.Status, r.Problem)
	}
	return r.Version
}

// withToken adds a bearer token to API requests that have none.
type withToken struct {
	token string
	next  http.RoundTripper
}

func (w *withToken) RoundTrip(req *http.Request) (*http.Response, error) {
	if w.token == "" || !strings.HasPrefix(req.URL.Path, "/api/") || req.Header.Get("Authorization") != "" {
		return w.next.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+w.token)
	return w.next.RoundTrip(req)
}

// Response is a completed HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Do sends a request to the server and reads the whole answer. API calls
// carry the admin token unless header sets Authorization.
func (s *Server) Do(method, path string, body io.Reader, header ...string) Response {
	s.t.Helper()
	return s.do(s.HTTP, method, path, body, header...)
}

// DoToken is Do with token as the bearer token, on any path; an empty
// token sends none.
func (s *Server) DoToken(token, method, path string, body io.Reader, header ...string) Response {
	s.t.Helper()
	if token != "" {
		header = append(header, "Authorization", "Bearer "+token)
	}
	return s.do(http.DefaultClient, method, path, body, header...)
}

func (s *Server) do(hc *http.Client, method, path string, body io.Reader, header ...string) Response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// Get is Do with GET and no body.
func (s *Server) Get(path string, header ...string) Response {
	s.t.Helper()
	return s.Do("GET", path, nil, header...)
}

// Invoke calls a function with method, path suffix and body.
func (s *Server) Invoke(name, method, path, body string, header ...string) Response {
	s.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return s.Do(method, "/fn/"+name+path, r, header...)
}

// Eventually polls cond every 20ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Instances counts the live instances of a function on this server.
func (s *Server) Instances(name string) int {
	n := 0
	for _, in := range s.Daemon.Instances(name) {
		if in.ID != "" {
			n++
		}
	}
	return n
}

// String describes the server for failure messages.
func (s *Server) String() string { return fmt.Sprintf("duct at %s (data %s)", s.URL, s.Config.DataDir) }
