package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/duct-dev/duct"
)

// Accepted is the gateway's answer to an asynchronous invocation: the
// invocation is stored and will run.
type Accepted struct {
	ID string `json:"id"`
	// Location is the API path of its record; URL the same, absolute.
	Location string `json:"location"`
	URL      string `json:"url"`
}

// InvokeAsync queues an invocation of function name (Prefer:
// respond-async) and returns once the server has stored it. Method, path,
// header and body are as for Invoke; so is the token a function of invoke
// mode token wants in header. An Idempotency-Key header makes a repeated
// call with the same key return the first one's id.
func (c *Client) InvokeAsync(ctx context.Context, name, method, path string, header http.Header, body io.Reader) (*Accepted, error) {
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Prefer", "respond-async")
	resp, err := c.Invoke(ctx, name, method, path, h, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusAccepted:
	case resp.StatusCode >= 300:
		return nil, readError(resp)
	default:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil, fmt.Errorf("the server ran %s synchronously (%s): it does not queue invocations", name, resp.Status)
	}
	var a Accepted
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&a); err != nil || a.ID == "" {
		a.Location = resp.Header.Get("Location")
		a.ID = a.Location[strings.LastIndexByte(a.Location, '/')+1:]
	}
	if a.Location == "" {
		a.Location = resp.Header.Get("Location")
	}
	u := *c.base
	u.Path += a.Location
	a.URL = u.String()
	return &a, nil
}

// Invocation reads the record of an asynchronous invocation.
func (c *Client) Invocation(ctx context.Context, id string) (*duct.Invocation, error) {
	var inv duct.Invocation
	if err := c.call(ctx, http.MethodGet, "invocations/"+url.PathEscape(id), nil, &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// WaitInvocation polls an invocation's record until it is final
// (succeeded or failed) or ctx ends, then returns the last record read.
func (c *Client) WaitInvocation(ctx context.Context, id string) (*duct.Invocation, error) {
	wait := 100 * time.Millisecond
	for {
		inv, err := c.Invocation(ctx, id)
		if err != nil {
			return nil, err
		}
		if inv.Status.Final() {
			return inv, nil
		}
		select {
		case <-ctx.Done():
			return inv, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
