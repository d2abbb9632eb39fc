package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/logs"
)

// readLogs streams a function's log as NDJSON, one duct.LogEntry per line.
// Query: since (a duration back, e.g. 10m, or RFC 3339), tail (last N
// entries), invocation (one invocation's lines), follow (keep streaming).
func (a *API) readLogs(w http.ResponseWriter, r *http.Request) error {
	n, err := name(r)
	if err != nil {
		return err
	}
	if _, err := a.cfg.Store.Function(r.Context(), n); err != nil {
		return err
	}
	q := logs.Query{Function: n, Invocation: r.URL.Query().Get("invocation")}
	v := r.URL.Query()
	if s := v.Get("since"); s != "" {
		if d, err := duct.ParseDuration(s); err == nil {
			q.Since = time.Now().Add(-d.D())
		} else if t, err := time.Parse(time.RFC3339, s); err == nil {
			q.Since = t
		} else {
			return duct.Invalid("since", "%q: want a duration such as 10m or an RFC 3339 time", s)
		}
	}
	if s := v.Get("tail"); s != "" {
		t, err := strconv.Atoi(s)
		if err != nil || t < 0 {
			return duct.Invalid("tail", "%q: want a count", s)
		}
		q.Tail = t
	}
	if s := v.Get("follow"); s != "" {
		f, err := strconv.ParseBool(s)
		if err != nil {
			return duct.Invalid("follow", "%q: want true or false", s)
		}
		q.Follow = f
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if q.Follow && a.cfg.Stopping != nil {
		go func() {
			select {
			case <-a.cfg.Stopping:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	enc := json.NewEncoder(w)
	err = a.cfg.Logs.Read(ctx, q, func(e duct.LogEntry) error {
		if err := enc.Encode(e); err != nil {
			return err
		}
		if q.Follow && fl != nil {
			fl.Flush()
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		a.log.Warn("read logs", "function", n, "err", err)
	}
	return nil
}
