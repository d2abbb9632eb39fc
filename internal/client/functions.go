package client

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/api"
)

// Status is what a server says about itself.
type Status struct {
	Version string `json:"version"`
	// Sandbox says how the server isolates function instances.
	Sandbox  string    `json:"sandbox"`
	Started  time.Time `json:"started"`
	DataDir  string    `json:"dataDir"`
	NATS     string    `json:"nats"`
	Runtimes []string  `json:"runtimes"`
	// Toolchain describes the language tools the server found, as the
	// server reports it.
	Toolchain json.RawMessage `json:"toolchain,omitempty"`
}

// Status describes the server.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.call(ctx, http.MethodGet, "status", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Functions lists the deployed functions, in name order.
func (c *Client) Functions(ctx context.Context) ([]duct.FunctionInfo, error) {
	var out []duct.FunctionInfo
	if err := c.call(ctx, http.MethodGet, "functions", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Function describes one function: its serving version and live
// instances.
func (c *Client) Function(ctx context.Context, name string) (*duct.FunctionInfo, error) {
	var fi duct.FunctionInfo
	if err := c.call(ctx, http.MethodGet, functionPath(name), nil, &fi); err != nil {
		return nil, err
	}
	return &fi, nil
}

// VersionInfo is one entry of a function's version list.
type VersionInfo struct {
	duct.Version
	// Active is set on the version that serves.
	Active bool `json:"active"`
}

// Versions lists a function's versions, oldest first.
func (c *Client) Versions(ctx context.Context, name string) ([]VersionInfo, error) {
	var out []VersionInfo
	if err := c.call(ctx, http.MethodGet, functionPath(name, "versions"), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Version returns version n of a function, its build log included.
func (c *Client) Version(ctx context.Context, name string, n int) (*duct.Version, error) {
	var v duct.Version
	if err := c.call(ctx, http.MethodGet, functionPath(name, "versions", strconv.Itoa(n)), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Rollback makes version n of a function serve; n = 0 means the version
// before the one serving. It returns the version now serving.
func (c *Client) Rollback(ctx context.Context, name string, n int) (*duct.Version, error) {
	var v duct.Version
	if err := c.call(ctx, http.MethodPost, functionPath(name, "rollback"), api.RollbackRequest{Version: n}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Delete removes a function, its versions and its logs.
func (c *Client) Delete(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, functionPath(name), nil, nil)
}
