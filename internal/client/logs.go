package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/duct-dev/duct"
)

// LogQuery selects log entries. The zero value asks for the last hour.
type LogQuery struct {
	// Since is how far back to start: a duration such as "10m", or an
	// RFC 3339 time. Empty means the server's default (one hour).
	Since string
	// Tail, when positive, keeps only the last Tail entries of what
	// Since selects (followed entries are all sent).
	Tail int
	// Invocation keeps one invocation's entries.
	Invocation string
	// Follow keeps the stream open for new entries until ctx ends.
	Follow bool
}

func (q LogQuery) values() url.Values {
	v := url.Values{}
	if q.Since != "" {
		v.Set("since", q.Since)
	}
	if q.Tail > 0 {
		v.Set("tail", strconv.Itoa(q.Tail))
	}
	if q.Invocation != "" {
		v.Set("invocation", q.Invocation)
	}
	if q.Follow {
		v.Set("follow", "true")
	}
	return v
}

// Logs streams a function's log entries, oldest first, to fn. It returns
// when the server has sent everything the query selects (or, following,
// when ctx ends: then it returns nil), or the first error fn returns.
func (c *Client) Logs(ctx context.Context, name string, q LogQuery, fn func(duct.LogEntry) error) error {
	req, err := c.newRequest(ctx, http.MethodGet, functionPath(name, "logs"), q.values(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.send(req)
	if err != nil {
		if q.Follow && errors.Is(err, ctx.Err()) && ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var e duct.LogEntry
		if err := dec.Decode(&e); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if ctx.Err() != nil && q.Follow {
				return nil
			}
			return fmt.Errorf("logs %s: %w", name, c.readFailure(ctx, err))
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}
