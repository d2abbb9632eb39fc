package builder

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/duct-dev/duct"
)

var nodeConventional = []string{"index.js", "index.mjs", "index.cjs", "handler.js", "handler.mjs", "function.js", "main.js"}

type packageJSON struct {
	Main         string            `json:"main"`
	Dependencies map[string]string `json:"dependencies"`
}

func (b *Builder) buildNode(ctx context.Context, spec duct.Function, src, out string, lw *logWriter) (*Result, error) {
	var pkg packageJSON
	if raw, err := os.ReadFile(filepath.Join(src, "package.json")); err == nil {
		if err := json.Unmarshal(raw, &pkg); err != nil {
			return nil, duct.Invalid("package.json", "%v", err)
		}
	}
	if spec.Entry == "" && pkg.Main != "" {
		spec.Entry = filepath.Clean(pkg.Main)
	}
	entry, err := entryFile(spec, src, nodeConventional, ".js", ".mjs", ".cjs")
	if err != nil {
		return nil, err
	}
	lw.Printf("node: entry %s, handler %s (%s)", entry, spec.Handler, spec.Signature)
	skipModules := func(rel string, _ os.DirEntry) bool { return len(pkg.Dependencies) > 0 && rel == "node_modules" }
	if err := copyTree(src, out, skipModules); err != nil {
		return nil, err
	}
	if len(pkg.Dependencies) > 0 {
		npm := b.cfg.Tools.Npm
		if !npm.OK() {
			return nil, &duct.BuildError{Reason: "package.json has dependencies but npm is not available: " + npm.Missing}
		}
		env := hostEnv(binDir(b.cfg.Tools.Node.Path), binDir(npm.Path))
		if b.cfg.NpmCache != "" {
			env = append(env, "npm_config_cache="+b.cfg.NpmCache)
		}
		env = append(env, "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false")
		args := []string{npm.Path, "install", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--no-progress"}
		if firstExisting(out, "package-lock.json") != "" {
			args[1] = "ci"
		}
		if err := run(ctx, lw, out, env, "npm "+args[1], args...); err != nil {
			return nil, err
		}
	}
	return &Result{Run: duct.RunSpec{Protocol: duct.ProtocolShim, Entry: entry}}, nil
}
