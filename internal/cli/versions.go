package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/duct-dev/duct/internal/client"
)

// versionsCmd is `duct versions`.
type versionsCmd struct{ json bool }

func (c *versionsCmd) info() cmdInfo {
	return cmdInfo{
		name:    "versions",
		group:   "Functions",
		summary: "List a function's versions",
		usage:   "NAME [flags]",
		help: `
Versions lists every version of the function NAME, oldest first; the one
serving is marked with '*'. Serve another with 'duct rollback'.`,
		examples: `
duct versions hello
duct versions hello --json | jq '.[] | select(.active) | .number'`,
		complete: "function",
	}
}

func (c *versionsCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	jsonFlag(fs, &c.json)
}

func (c *versionsCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "function NAME"); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	vs, err := cl.Versions(ctx, args[0])
	if err != nil {
		return fmt.Errorf("versions %s: %w", args[0], trimOp(err, "versions", args[0]))
	}
	if c.json {
		if vs == nil {
			vs = []client.VersionInfo{}
		}
		return writeJSON(e.stdout, vs)
	}
	now := time.Now()
	t := newTable(e.stdout, "VERSION", "ACTIVE", "RUNTIME", "SOURCE", "ARTIFACT", "BUILD", "CREATED")
	for _, v := range vs {
		active := " "
		if v.Active {
			active = "*"
		}
		build := since(v.BuildDuration)
		if v.Cached {
			build = "reused"
		}
		t.row(strconv.Itoa(v.Number), active, string(v.Spec.Runtime), shortDigest(v.SourceDigest),
			humanSize(v.ArtifactSize), build, age(v.CreatedAt, now)+" ago")
	}
	return t.flush()
}
