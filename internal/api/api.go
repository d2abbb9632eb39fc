// Package api serves Duct's control-plane REST API under /api/v1: deploy,
// list, describe, version, roll back and remove functions, read their logs,
// manage Pub/Sub topics and subscriptions, publish and pull messages,
// manage API tokens and secrets, and describe the server. Every route but
// the OpenAPI document needs a bearer token whose role allows it. Handlers
// return errors; one adapter turns them into problem details.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/auth"
	"github.com/duct-dev/duct/internal/deploy"
	"github.com/duct-dev/duct/internal/id"
	"github.com/duct-dev/duct/internal/logs"
	"github.com/duct-dev/duct/internal/problem"
	"github.com/duct-dev/duct/internal/pubsub"
	"github.com/duct-dev/duct/internal/secrets"
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
	// Auth checks bearer tokens and manages them. Nil refuses every
	// call but the OpenAPI document.
	Auth *auth.Service
	// Secrets holds secret values; nil answers the secret routes 503.
	Secrets *secrets.Secrets
	// SecretChanged is called after a secret is set or deleted, so that
	// this node's functions using it serve the new value before the API
	// answers (other nodes follow the store's watch).
	SecretChanged func(ctx context.Context, name string) error
	// Stopping closes when the server begins to shut down: streams that
	// would otherwise last forever (followed logs) end then.
	Stopping <-chan struct{}
	// PubSub is the message broker behind the topic and subscription
	// routes; nil answers them 503.
	PubSub pubsub.Service
	// Invocations reads asynchronous invocation records; nil answers
	// their route 503.
	Invocations Invocations
	// Triggers vets, describes and feeds function triggers (the
	// CloudEvents ingress, trigger changes); nil answers their routes 503.
	Triggers Triggers
	// MaxUpload bounds a deploy request body.
	MaxUpload int64
	Logger    *slog.Logger
}

// API is the control-plane handler.
type API struct {
	cfg   Config
	mux   *http.ServeMux
	log   *slog.Logger
	perms map[string]duct.Permission // route pattern → what it needs; set by New
}

// New returns the API handler.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxUpload == 0 {
		cfg.MaxUpload = 64 << 20
	}
	a := &API{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, perms: map[string]duct.Permission{}}
	a.route("GET /api/v1/status", duct.PermRead, a.status)
	a.route("GET /api/v1/whoami", duct.PermIdentify, a.whoami)
	a.route("GET /api/v1/functions", duct.PermRead, a.listFunctions)
	a.route("GET /api/v1/functions/{name}", duct.PermRead, a.getFunction)
	a.route("DELETE /api/v1/functions/{name}", duct.PermDeploy, a.deleteFunction)
	a.route("POST /api/v1/functions/{name}/versions", duct.PermDeploy, a.deploy)
	a.route("GET /api/v1/functions/{name}/versions", duct.PermRead, a.listVersions)
	a.route("GET /api/v1/functions/{name}/versions/{n}", duct.PermRead, a.getVersion)
	a.route("POST /api/v1/functions/{name}/rollback", duct.PermDeploy, a.rollback)
	a.route("GET /api/v1/functions/{name}/logs", duct.PermRead, a.readLogs)
	a.route("GET /api/v1/tokens", duct.PermAdmin, a.listTokens)
	a.route("POST /api/v1/tokens", duct.PermAdmin, a.createToken)
	a.route("DELETE /api/v1/tokens/{id}", duct.PermAdmin, a.revokeToken)
	a.route("GET /api/v1/secrets", duct.PermListSecrets, a.listSecrets)
	a.route("PUT /api/v1/secrets/{name}", duct.PermAdmin, a.setSecret)
	a.route("DELETE /api/v1/secrets/{name}", duct.PermAdmin, a.deleteSecret)
	a.invocationRoutes()
	a.pubsubRoutes()
	a.eventRoutes()
	a.mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openapiDoc)
	})
	// Unknown endpoints answer 404 only to a caller with a token: the
	// API's shape is no secret (the OpenAPI document is public), but
	// nothing else is said without one.
	a.route("/api/v1/", duct.PermIdentify, func(w http.ResponseWriter, r *http.Request) error {
		return errNoRoute
	})
	return a
}

var errNoRoute = errors.New("no such API endpoint")

// handlerFunc is an API handler that returns its error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route registers h behind the auth check, which lets through only
// tokens whose role has perm, and the error adapter.
func (a *API) route(pattern string, perm duct.Permission, h handlerFunc) {
	a.perms[pattern] = perm
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		reqID := id.New()
		w.Header().Set("X-Request-Id", reqID)
		p, err := a.authorize(r, perm)
		if err != nil {
			a.refuse(w, r, reqID, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		err = h(w, r)
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
