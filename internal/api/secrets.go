package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/duct-dev/duct"
)

// SecretValue is the body of PUT /api/v1/secrets/{name}. It is the only
// shape in the API that carries a secret's value, and only inward.
type SecretValue struct {
	Value *string `json:"value"`
}

var errNoSecrets = fmt.Errorf("secrets: %w", duct.ErrUnavailable)

func (a *API) listSecrets(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Secrets == nil {
		return errNoSecrets
	}
	ss, err := a.cfg.Secrets.List(r.Context())
	if err != nil {
		return err
	}
	users, err := a.secretUsers(r.Context())
	if err != nil {
		return err
	}
	for i := range ss {
		ss[i].UsedBy = users[ss[i].Name]
	}
	if ss == nil {
		ss = []duct.SecretInfo{}
	}
	return writeJSON(w, http.StatusOK, ss)
}

func (a *API) setSecret(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Secrets == nil {
		return errNoSecrets
	}
	name := r.PathValue("name")
	if err := duct.ValidateSecretName(name); err != nil {
		return err
	}
	value, err := readSecretValue(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	info, created, err := a.cfg.Secrets.Set(ctx, name, value)
	if err != nil {
		return err
	}
	a.log.Info("secret set", "name", name, "by", principal(r).Name)
	if err := a.secretChanged(ctx, name); err != nil {
		return err
	}
	users, err := a.secretUsers(ctx)
	if err != nil {
		return err
	}
	info.UsedBy = users[name]
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, info)
}

// readSecretValue decodes {"value": "..."}. Its errors never quote the
// body: it holds the secret.
func readSecretValue(r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(nil, r.Body, 1<<20)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var v SecretValue
	err := dec.Decode(&v)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, duct.Invalid("value", "the body exceeds 1 MiB; a secret holds at most 32 KiB")
	case err != nil, dec.More():
		return nil, duct.Invalid("body", `want a JSON object {"value": "..."} holding the secret as a string`)
	case v.Value == nil:
		return nil, duct.Invalid("value", `missing: want {"value": "..."}`)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, duct.Invalid("body", `want a single JSON object {"value": "..."}`)
	}
	value := []byte(*v.Value)
	if err := duct.ValidateSecretValue(value); err != nil {
		return nil, err
	}
	return value, nil
}

func (a *API) deleteSecret(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Secrets == nil {
		return errNoSecrets
	}
	name := r.PathValue("name")
	if err := duct.ValidateSecretName(name); err != nil {
		return err
	}
	force := false
	if s := r.URL.Query().Get("force"); s != "" {
		var err error
		if force, err = strconv.ParseBool(s); err != nil {
			return duct.Invalid("force", "%q: want true or false", s)
		}
	}
	ctx := r.Context()
	if _, err := a.cfg.Secrets.Info(ctx, name); err != nil {
		return err
	}
	users, err := a.secretUsers(ctx)
	if err != nil {
		return err
	}
	if fns := users[name]; len(fns) > 0 && !force {
		return fmt.Errorf("secret %q is used by %s %s: take it out of their secrets and redeploy, "+
			"or delete it anyway with ?force=true (new instances then run without it): %w",
			name, plural(len(fns), "function", "functions"), strings.Join(fns, ", "), duct.ErrConflict)
	}
	if err := a.cfg.Secrets.Delete(ctx, name); err != nil {
		return err
	}
	a.log.Info("secret deleted", "name", name, "by", principal(r).Name, "force", force)
	if err := a.secretChanged(ctx, name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) secretChanged(ctx context.Context, name string) error {
	if a.cfg.SecretChanged == nil {
		return nil
	}
	return a.cfg.SecretChanged(ctx, name)
}

// secretUsers maps each secret name to the functions, sorted, whose
// serving version references it.
func (a *API) secretUsers(ctx context.Context) (map[string][]string, error) {
	users := map[string][]string{}
	if a.cfg.Store == nil {
		return users, nil
	}
	states, err := a.cfg.Store.Functions(ctx)
	if err != nil {
		return nil, err
	}
	for _, st := range states {
		if st.Active == 0 {
			continue
		}
		v, err := a.cfg.Store.Version(ctx, st.Name, st.Active)
		if errors.Is(err, duct.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		for _, s := range v.Spec.Secrets {
			users[s] = append(users[s], st.Name)
		}
	}
	for _, fns := range users {
		sort.Strings(fns)
	}
	return users, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
