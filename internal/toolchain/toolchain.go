// Package toolchain finds the language tools on the host once, at start:
// the real paths of go, node, npm and python3 (not a version manager's
// shim, which costs 100+ ms per start) and their versions, which are part
// of every build key.
package toolchain

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/duct-dev/duct"
)

// Tool is one found tool.
type Tool struct {
	Path    string `json:"path,omitempty"`
	Version string `json:"version,omitempty"`
	// Missing says why the tool cannot be used; empty when it can.
	Missing string `json:"missing,omitempty"`
}

// OK reports whether the tool was found.
func (t Tool) OK() bool { return t.Missing == "" }

// Set is the host's toolchain.
type Set struct {
	Go     Tool `json:"go"`
	Node   Tool `json:"node"`
	Npm    Tool `json:"npm"`
	Python Tool `json:"python"`
}

// Names lets an operator point at specific tools; empty fields are looked
// up on PATH.
type Names struct {
	Go, Node, Npm, Python string
}

// Detect finds the tools. It never fails: a missing tool is reported in
// its Missing field and makes its runtime unavailable.
func Detect(ctx context.Context, n Names) Set {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	pick := func(name, def string) string {
		if name != "" {
			return name
		}
		return def
	}
	var s Set
	s.Go = probe(ctx, pick(n.Go, "go"), []string{"env", "GOROOT"}, func(out string) (string, string) {
		root := strings.TrimSpace(out)
		return filepath.Join(root, "bin", "go"), ""
	}, "version")
	s.Node = probe(ctx, pick(n.Node, "node"), []string{"-p", "process.execPath"}, first, "--version")
	s.Npm = probe(ctx, pick(n.Npm, "npm"), nil, nil, "--version")
	s.Python = probe(ctx, pick(n.Python, "python3"), []string{"-c", "import sys; print(sys.executable)"}, first, "--version")
	return s
}

func first(out string) (string, string) { return strings.TrimSpace(out), "" }

// probe finds name on PATH, asks it for its real path (resolve), then its
// version.
func probe(ctx context.Context, name string, resolveArgs []string, resolve func(string) (string, string), versionArg string) Tool {
	path, err := exec.LookPath(name)
	if err != nil {
		return Tool{Missing: fmt.Sprintf("%s not found on PATH", name)}
	}
	if resolve != nil {
		out, err := run(ctx, path, resolveArgs...)
		if err != nil {
			return Tool{Missing: fmt.Sprintf("%s does not run: %v", path, err)}
		}
		if real, _ := resolve(out); real != "" {
			if _, err := os.Stat(real); err == nil {
				path = real
			}
		}
	}
	out, err := run(ctx, path, versionArg)
	if err != nil {
		return Tool{Missing: fmt.Sprintf("%s --version: %v", path, err)}
	}
	return Tool{Path: path, Version: strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])}
}

func run(ctx context.Context, path string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	return string(out), err
}

// cleanEnv keeps what tools need to run, and nothing that slows them down
// (NODE_EXTRA_CA_CERTS, NODE_OPTIONS).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "HOME", "LANG", "GOROOT", "GOPATH", "GOCACHE", "GOMODCACHE", "GOPROXY", "GOSUMDB", "GOFLAGS",
			"GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOINSECURE", "GOTOOLCHAIN", "PYENV_ROOT", "PYENV_VERSION":
			env = append(env, kv)
		}
	}
	return env
}

// For returns the tool that runs functions of runtime r, or an error
// saying why that runtime is not available here.
func (s Set) For(r duct.Runtime) (Tool, error) {
	var t Tool
	switch r {
	case duct.RuntimeGo:
		t = s.Go
	case duct.RuntimeNode:
		t = s.Node
	case duct.RuntimePython:
		t = s.Python
	default:
		return t, nil
	}
	if !t.OK() {
		return t, fmt.Errorf("runtime %s is not available on this server: %s: %w", r, t.Missing, duct.ErrInvalid)
	}
	return t, nil
}
