package builder

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"

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
		main, err := packageMain(src, pkg.Main)
		if err != nil {
			return nil, err
		}
		spec.Entry = main
	}
	for name, version := range pkg.Dependencies {
		if path, ok := localDependency(version); ok && !insideSource(path) {
			return nil, duct.Invalid("package.json", "dependency %q is %q, outside the source: only the registry and paths inside the source can be installed",
				name, version)
		}
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
		output, err := run(ctx, lw, out, env, "npm "+args[1], args...)
		if err != nil {
			var be *duct.BuildError
			if errors.As(err, &be) {
				be.Reason = npmReason(args[1], output)
			}
			return nil, err
		}
	}
	return &Result{Run: duct.RunSpec{Protocol: duct.ProtocolShim, Entry: entry}}, nil
}

// npmReason explains a failed npm install from its output: npm's own
// error lines, without the pointer to its debug log on the server.
func npmReason(verb, output string) string {
	var msgs []string
	for _, line := range strings.Split(output, "\n") {
		msg, ok := strings.CutPrefix(line, "npm error ")
		if !ok {
			msg, ok = strings.CutPrefix(line, "npm ERR! ")
		}
		msg = strings.TrimSpace(msg)
		if !ok || msg == "" || strings.HasPrefix(msg, "A complete log of this run") || strings.HasPrefix(msg, "code ") {
			continue
		}
		msgs = append(msgs, msg)
		if len(msgs) == 2 {
			break
		}
	}
	reason := "npm " + verb + " could not install the dependencies in package.json"
	if len(msgs) > 0 {
		reason += ": " + shorten(strings.Join(msgs, "; "))
	} else if last := lastLine(output); last != "" {
		reason += ": " + last
	}
	if unreachable(output) {
		reason += " (the npm registry is not reachable from the server)"
	}
	return reason
}

// packageMain resolves package.json's main inside the source, the way
// Node.js does for the common cases: as given, or with an extension.
func packageMain(src, main string) (string, error) {
	m := filepath.Clean(main)
	if !insideSource(m) {
		return "", duct.Invalid("package.json", "main %q is outside the source", main)
	}
	for _, cand := range []string{m, m + ".js", m + ".mjs", m + ".cjs", filepath.Join(m, "index.js")} {
		if firstExisting(src, cand) != "" {
			return cand, nil
		}
	}
	return "", duct.Invalid("package.json", "main %q is not a file in the source", main)
}

// localDependency reports whether an npm dependency's version names a
// path on the machine that builds it, and returns that path.
func localDependency(version string) (string, bool) {
	for _, prefix := range []string{"file:", "link:"} {
		if p, ok := strings.CutPrefix(version, prefix); ok {
			return p, true
		}
	}
	for _, prefix := range []string{"/", ".", "~"} {
		if strings.HasPrefix(version, prefix) {
			return version, true
		}
	}
	return "", false
}
