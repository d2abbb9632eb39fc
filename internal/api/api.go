// Package api serves Duct's control-plane REST API under /api/v1: deploy,
// list, describe, version, roll back and remove functions, read their logs,
// and describe the server. Handlers return errors; one adapter turns them
// into problem details.
package api

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/deploy"
	"github.com/duct-dev/duct/internal/id"
	"github.com/duct-dev/duct/internal/logs"
	"github.com/duct-dev/duct/internal/problem"
	"github.com/duct-dev/duct/internal/store"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1/"

//go:embed openapi.json
var openapiDoc []byte

// Instances reports the live instances of a function.
type Instances interface {
	Instances(name string) []duct.InstanceInfo
}

// Config wires the API.
type Config struct {
	Store     *store.Store
	Deploy    *deploy.Service
	Logs      *logs.Log
	Instances Instances
	// Applied is called after a change to a function so this node serves
	// it before the API answers (other nodes follow the store's watch).
	Applied func(ctx context.Context, name string) error
	// Removed is called after a function is deleted.
	Removed func(name string)
	// Status describes the server for GET /api/v1/status.
	Status func() any
	// BaseURL is the public base URL of the gateway, for function URLs.
	BaseURL func(r *http.Request) string
	// AdminToken, when set, is required as a bearer token on every call
	// but the OpenAPI document.
	AdminToken string
	// Stopping closes when the server begins to shut down: streams that
	// would otherwise last forever (followed logs) end then.
	Stopping <-chan struct{}
	// MaxUpload bounds a deploy request body.
	MaxUpload int64
	Logger    *slog.Logger
}

// API is the control-plane handler.
type API struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger
}

// New returns the API handler.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxUpload == 0 {
		cfg.MaxUpload = 64 << 20
	}
	a := &API{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger}
	a.route("GET /api/v1/status", a.status)
	a.route("GET /api/v1/functions", a.listFunctions)
	a.route("GET /api/v1/functions/{name}", a.getFunction)
	a.route("DELETE /api/v1/functions/{name}", a.deleteFunction)
	a.route("POST /api/v1/functions/{name}/versions", a.deploy)
	a.route("GET /api/v1/functions/{name}/versions", a.listVersions)
	a.route("GET /api/v1/functions/{name}/versions/{n}", a.getVersion)
	a.route("POST /api/v1/functions/{name}/rollback", a.rollback)
	a.route("GET /api/v1/functions/{name}/logs", a.readLogs)
	a.mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openapiDoc)
	})
	a.route("/api/v1/", func(w http.ResponseWriter, r *http.Request) error {
		return errNoRoute
	})
	return a
}

var errNoRoute = errors.New("no such API endpoint")

// handlerFunc is an API handler that returns its error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route registers h behind the error adapter and the auth check.
func (a *API) route(pattern string, h handlerFunc) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		reqID := id.New()
		w.Header().Set("X-Request-Id", reqID)
		if err := a.authorize(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="duct"`)
			problem.Write(w, r, reqID, err, err.Error())
			return
		}
		err := h(w, r)
		if err == nil {
			return
		}
		a.writeError(w, r, reqID, err)
	})
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, reqID string, err error) {
	if errors.Is(err, errNoRoute) {
		problem.WriteStatus(w, r, reqID, http.StatusNotFound, "Not Found", "no API endpoint "+r.Method+" "+r.URL.Path)
		return
	}
	status, _ := problem.Status(err)
	detail := err.Error()
	if status >= 500 {
		a.log.Error("api", "method", r.Method, "path", r.URL.Path, "request", reqID, "err", err)
		detail = "internal error; see the server log for request " + reqID
	}
	var be *duct.BuildError
	if errors.As(err, &be) {
		writeBuildError(w, r, reqID, be)
		return
	}
	problem.Write(w, r, reqID, err, detail)
}

// buildProblem is a problem document with the build log attached.
type buildProblem struct {
	problem.Details
	BuildLog string `json:"buildLog,omitempty"`
}

func writeBuildError(w http.ResponseWriter, r *http.Request, reqID string, be *duct.BuildError) {
	status, title := problem.Status(be)
	w.Header().Set("Content-Type", problem.ContentType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(buildProblem{
		Details:  problem.Details{Type: "about:blank", Title: title, Status: status, Detail: be.Error(), Instance: r.URL.Path, RequestID: reqID},
		BuildLog: be.Log,
	})
}

func (a *API) authorize(r *http.Request) error {
	if a.cfg.AdminToken == "" {
		return nil
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return duct.ErrUnauthorized
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(a.cfg.AdminToken)) != 1 {
		return duct.ErrForbidden
	}
	return nil
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func readJSON(r *http.Request, v any) error {
	body := http.MaxBytesReader(nil, r.Body, 1<<20)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return duct.Invalid("body", "%v", err)
	}
	return nil
}
