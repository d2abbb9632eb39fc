package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/api"
)

// Token is the bearer token the client sends on API calls ("" for none).
func (c *Client) Token() string { return c.token }

// Whoami says which token the client sends: its name, id and role.
func (c *Client) Whoami(ctx context.Context) (*duct.Principal, error) {
	var p duct.Principal
	if err := c.call(ctx, http.MethodGet, "whoami", nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Tokens lists the server's API tokens, oldest first (admin).
func (c *Client) Tokens(ctx context.Context) ([]duct.TokenInfo, error) {
	var out []duct.TokenInfo
	if err := c.call(ctx, http.MethodGet, "tokens", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateToken issues a token with a name and a role (admin). The answer
// holds the token's text: the server never shows it again.
func (c *Client) CreateToken(ctx context.Context, name string, role duct.Role) (*duct.NewToken, error) {
	var nt duct.NewToken
	if err := c.call(ctx, http.MethodPost, "tokens", api.CreateTokenRequest{Name: name, Role: role}, &nt); err != nil {
		return nil, err
	}
	return &nt, nil
}

// RevokeToken revokes the token with id (admin).
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "tokens/"+url.PathEscape(id), nil, nil)
}

// Secrets lists the secrets' names, when they changed and which functions
// use them; never their values (admin, deploy).
func (c *Client) Secrets(ctx context.Context) ([]duct.SecretInfo, error) {
	var out []duct.SecretInfo
	if err := c.call(ctx, http.MethodGet, "secrets", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// SetSecret stores value as the secret name, creating or replacing it
// (admin). Functions using it serve the new value once this returns.
func (c *Client) SetSecret(ctx context.Context, name string, value []byte) (*duct.SecretInfo, error) {
	v := string(value)
	var info duct.SecretInfo
	if err := c.call(ctx, http.MethodPut, "secrets/"+url.PathEscape(name), api.SecretValue{Value: &v}, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// DeleteSecret deletes the secret name (admin). A secret that deployed
// functions reference is refused (duct.ErrConflict, naming them) unless
// force is set.
func (c *Client) DeleteSecret(ctx context.Context, name string, force bool) error {
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	req, err := c.newRequest(ctx, http.MethodDelete, "secrets/"+url.PathEscape(name), q, nil)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
