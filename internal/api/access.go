package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/auth"
	"github.com/duct-dev/duct/internal/problem"
)

// principalKey carries the caller's duct.Principal in a request context.
type principalKey struct{}

// principal is who made r, as authorize found.
func principal(r *http.Request) duct.Principal {
	p, _ := r.Context().Value(principalKey{}).(duct.Principal)
	return p
}

var (
	errNoToken = fmt.Errorf("this endpoint needs a bearer token: send Authorization: Bearer <token> "+
		"(duct login stores one; DUCT_TOKEN sets one): %w", duct.ErrUnauthorized)
	errScheme = fmt.Errorf(`the Authorization header is not "Bearer <token>": %w`, duct.ErrUnauthorized)
)

// authorize returns the principal of r's bearer token when its role has
// perm; otherwise an error matching duct.ErrUnauthorized (no token, or
// one that is not valid) or duct.ErrForbidden (a role short of perm).
func (a *API) authorize(r *http.Request, perm duct.Permission) (duct.Principal, error) {
	h := r.Header["Authorization"]
	if len(h) == 0 {
		return duct.Principal{}, errNoToken
	}
	tok, ok := bearer(h)
	if !ok {
		return duct.Principal{}, errScheme
	}
	if a.cfg.Auth == nil {
		return duct.Principal{}, fmt.Errorf("this server accepts no tokens: %w", duct.ErrUnauthorized)
	}
	p, err := a.cfg.Auth.Authenticate(r.Context(), tok)
	if err != nil {
		return p, err
	}
	if !p.Role.Allows(perm) {
		return p, fmt.Errorf("token %q has role %s, which may not %s: %w", p.Name, p.Role, actions[perm], duct.ErrForbidden)
	}
	return p, nil
}

// actions says what each permission lets a caller do, for refusals.
var actions = map[duct.Permission]string{
	duct.PermRead:        "read functions, versions, logs, topics, subscriptions or the server's status (want role read, deploy or admin)",
	duct.PermDeploy:      "deploy, roll back or remove functions, or manage topics and subscriptions (want role deploy or admin)",
	duct.PermInvoke:      "publish or pull messages (want role invoke, deploy or admin)",
	duct.PermListSecrets: "list secrets (want role deploy or admin)",
	duct.PermAdmin:       "manage tokens or secrets (want role admin)",
}

// refuse answers a request authorize turned down.
func (a *API) refuse(w http.ResponseWriter, r *http.Request, reqID string, err error) {
	switch {
	case errors.Is(err, duct.ErrUnauthorized):
		c := `Bearer realm="duct"`
		if err != errNoToken {
			c += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", c)
		problem.Write(w, r, reqID, err, err.Error())
	case errors.Is(err, duct.ErrForbidden):
		w.Header().Set("WWW-Authenticate", `Bearer realm="duct", error="insufficient_scope"`)
		problem.Write(w, r, reqID, err, err.Error())
	default:
		a.writeError(w, r, reqID, err)
	}
}

// bearer returns the token of an Authorization header "Bearer <token>"
// (the scheme in any case).
func bearer(h []string) (string, bool) {
	if len(h) != 1 || len(h[0]) < 7 || !strings.EqualFold(h[0][:7], "Bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(h[0][7:])
	return tok, tok != ""
}

func (a *API) whoami(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, principal(r))
}

// CreateTokenRequest asks for a new token.
type CreateTokenRequest struct {
	Name string    `json:"name"`
	Role duct.Role `json:"role"`
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := a.cfg.Auth.List(r.Context())
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []duct.TokenInfo{}
	}
	return writeJSON(w, http.StatusOK, ts)
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) error {
	var req CreateTokenRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return duct.Invalid("name", "missing: name the token after who or what will use it")
	}
	if req.Role == "" {
		return duct.Invalid("role", "missing: want admin, deploy, invoke or read")
	}
	nt, err := a.cfg.Auth.Create(r.Context(), req.Name, req.Role, auth.CreatedBy(principal(r)))
	if err != nil {
		return err
	}
	a.log.Info("token created", "id", nt.ID, "name", nt.Name, "role", nt.Role, "by", nt.CreatedBy)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, nt)
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := a.cfg.Auth.Revoke(r.Context(), id); err != nil {
		return err
	}
	a.log.Info("token revoked", "id", id, "by", auth.CreatedBy(principal(r)))
	w.WriteHeader(http.StatusNoContent)
	return nil
}
