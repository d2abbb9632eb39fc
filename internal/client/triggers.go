package client

import (
	"context"
	"net/http"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/api"
)

// Triggers lists the triggers of a function's serving version (read).
func (c *Client) Triggers(ctx context.Context, name string) (*api.FunctionTriggers, error) {
	var out api.FunctionTriggers
	if err := c.call(ctx, http.MethodGet, functionPath(name, "triggers"), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetTriggers replaces a function's triggers with ts (deploy): the server
// makes a new version with the same artifact, and serves it. version,
// when not 0, is the serving version ts was made from; if another serves
// by now, the call fails with duct.ErrConflict.
func (c *Client) SetTriggers(ctx context.Context, name string, version int, ts []duct.Trigger) (*api.FunctionTriggers, error) {
	if ts == nil {
		ts = []duct.Trigger{}
	}
	var out api.FunctionTriggers
	req := api.TriggersRequest{Triggers: ts, Version: version}
	if err := c.call(ctx, http.MethodPut, functionPath(name, "triggers"), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
