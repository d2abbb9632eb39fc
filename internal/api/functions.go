package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/duct-dev/duct"
)

func (a *API) status(w http.ResponseWriter, r *http.Request) error {
	var s any = map[string]string{}
	if a.cfg.Status != nil {
		s = a.cfg.Status()
	}
	return writeJSON(w, http.StatusOK, s)
}

// name reads and validates the {name} path segment.
func name(r *http.Request) (string, error) {
	n := r.PathValue("name")
	return n, duct.ValidateName(n)
}

func (a *API) info(r *http.Request, st duct.FunctionState, withInstances bool) (duct.FunctionInfo, error) {
	fi := duct.FunctionInfo{Name: st.Name, Latest: st.Latest, CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt}
	if a.cfg.BaseURL != nil {
		fi.URL = a.cfg.BaseURL(r) + "/fn/" + st.Name
	}
	if st.Active > 0 {
		v, err := a.cfg.Store.Version(r.Context(), st.Name, st.Active)
		if err != nil && !errors.Is(err, duct.ErrNotFound) {
			return fi, err
		}
		if err == nil {
			v.BuildLog = ""
			fi.Active = &v
		}
	}
	if withInstances && a.cfg.Instances != nil {
		fi.Instances = a.cfg.Instances.Instances(st.Name)
	}
	return fi, nil
}

func (a *API) listFunctions(w http.ResponseWriter, r *http.Request) error {
	states, err := a.cfg.Store.Functions(r.Context())
	if err != nil {
		return err
	}
	out := make([]duct.FunctionInfo, 0, len(states))
	for _, st := range states {
		fi, err := a.info(r, st, false)
		if err != nil {
			return err
		}
		if a.cfg.Instances != nil {
			fi.Instances = a.cfg.Instances.Instances(st.Name)
		}
		out = append(out, fi)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) getFunction(w http.ResponseWriter, r *http.Request) error {
	n, err := name(r)
	if err != nil {
		return err
	}
	st, err := a.cfg.Store.Function(r.Context(), n)
	if err != nil {
		return err
	}
	fi, err := a.info(r, st, true)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, fi)
}

func (a *API) deleteFunction(w http.ResponseWriter, r *http.Request) error {
	n, err := name(r)
	if err != nil {
		return err
	}
	if err := a.cfg.Store.DeleteFunction(r.Context(), n); err != nil {
		return err
	}
	if a.cfg.Removed != nil {
		a.cfg.Removed(n)
	}
	if a.cfg.Logs != nil {
		if err := a.cfg.Logs.Purge(r.Context(), n); err != nil {
			a.log.Warn("purge logs of deleted function", "function", n, "err", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listVersions(w http.ResponseWriter, r *http.Request) error {
	n, err := name(r)
	if err != nil {
		return err
	}
	st, err := a.cfg.Store.Function(r.Context(), n)
	if err != nil {
		return err
	}
	vs, err := a.cfg.Store.Versions(r.Context(), n)
	if err != nil {
		return err
	}
	type item struct {
		duct.Version
		Active bool `json:"active"`
	}
	out := make([]item, len(vs))
	for i, v := range vs {
		v.BuildLog = ""
		out[i] = item{v, v.Number == st.Active}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) getVersion(w http.ResponseWriter, r *http.Request) error {
	n, err := name(r)
	if err != nil {
		return err
	}
	num, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || num < 1 {
		return duct.Invalid("version", "%q is not a version number", r.PathValue("n"))
	}
	v, err := a.cfg.Store.Version(r.Context(), n, num)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// RollbackRequest names the version to serve; 0 means the one before the
// serving version.
type RollbackRequest struct {
	Version int `json:"version"`
}

func (a *API) rollback(w http.ResponseWriter, r *http.Request) error {
	n, err := name(r)
	if err != nil {
		return err
	}
	var req RollbackRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if req.Version < 0 {
		return duct.Invalid("version", "%d is not a version number", req.Version)
	}
	ctx := r.Context()
	if req.Version == 0 {
		st, err := a.cfg.Store.Function(ctx, n)
		if err != nil {
			return err
		}
		vs, err := a.cfg.Store.Versions(ctx, n)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if v.Number < st.Active {
				req.Version = v.Number
			}
		}
		if req.Version == 0 {
			return fmt.Errorf("function %q has no version before %d: %w", n, st.Active, duct.ErrConflict)
		}
	}
	v, err := a.cfg.Store.Activate(ctx, n, req.Version)
	if err != nil {
		return err
	}
	if a.cfg.Applied != nil {
		if err := a.cfg.Applied(ctx, n); err != nil {
			return err
		}
	}
	v.BuildLog = ""
	return writeJSON(w, http.StatusOK, v)
}
