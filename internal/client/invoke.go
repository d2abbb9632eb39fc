package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Invoke calls a function through the gateway: method and path (which may
// hold a query, as in "/items?limit=2") go to /fn/{name}{path}, with
// header and body as given. The response is the function's own, whatever
// its status: only a request that got no answer is an error. The caller
// closes the response body.
//
// Invoke sends no API token of its own accord. A function whose invoke
// mode is token wants one (role invoke, deploy or admin) in header's
// Authorization, which the gateway checks and removes; a public
// function's code receives the Authorization header as sent, so put a
// token there only if that function is meant to see it.
func (c *Client) Invoke(ctx context.Context, name, method, path string, header http.Header, body io.Reader) (*http.Response, error) {
	u := c.FunctionURL(name)
	if path != "" && path != "/" {
		if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "?") {
			path = "/" + path
		}
		u += path
	}
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.agent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	return resp, nil
}

// FunctionURL is the gateway URL of a function.
func (c *Client) FunctionURL(name string) string {
	u := *c.base
	u.Path += "/fn/" + url.PathEscape(name)
	return u.String()
}
