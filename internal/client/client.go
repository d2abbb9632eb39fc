// Package client is a typed client for Duct's control-plane REST API
// (/api/v1) and its function gateway (/fn/{name}). The CLI uses nothing
// else to talk to a server, and tests use it to drive a real one.
//
// Every method takes a context first. Failures the server reports come back
// as *Error, which carries the problem document and matches duct's
// sentinel errors with errors.Is; a server that cannot be reached gives an
// error matching ErrUnreachable.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client talks to one Duct server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	agent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client used for every request; the default
// has no overall timeout, since deploys and followed logs stream for as
// long as they need. Bound calls with their context instead.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.agent = ua } }

// New returns a client for the server at baseURL (for example
// http://127.0.0.1:8080). token, when not empty, is sent as a bearer token
// on every API call.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("server URL %q: want http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server URL %q has no host", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, token: token, http: &http.Client{}, agent: "duct-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL is the server's base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

// endpoint returns the URL of an API path such as "functions/hello".
func (c *Client) endpoint(path string, q url.Values) string {
	u := *c.base
	u.Path += "/api/v1/" + path
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// functionPath is the API path of a function, escaped.
func functionPath(name string, rest ...string) string {
	p := "functions/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// newRequest builds an API request with the token and agent set.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(path, q), body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", c.agent)
	return req, nil
}

// send performs req and turns any status of 300 or more into an *Error.
// The caller closes the body of a successful response.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(req.Context(), err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// call sends a request with an optional JSON body and decodes a JSON
// answer into out (when out is not nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = strings.NewReader(string(b))
	}
	req, err := c.newRequest(ctx, method, path, nil, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, req.URL.Path, c.readFailure(ctx, err))
	}
	return nil
}

// ErrUnreachable matches errors from a server that could not be reached
// at all (refused, unknown host, TLS failure…), as opposed to one that
// answered with an error.
var ErrUnreachable = errors.New("server unreachable")

// unreachableError says which server could not be reached, and why.
type unreachableError struct {
	server string
	err    error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the Duct server at %s (%v)", e.server, e.err)
}

func (e *unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// transportError explains a request that got no answer. A cancelled
// context is reported as such, not as an unreachable server.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &unreachableError{server: c.BaseURL(), err: err}
}

// readFailure explains an answer cut short.
func (c *Client) readFailure(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("the server closed the connection early: %w", err)
	}
	return err
}
