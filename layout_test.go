package duct_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/duct-dev/duct"

// allowed lists, for every package of the module, the module packages it
// may import. A new arrow makes this test fail: add it here on purpose, or
// rethink it. The data plane (gateway, pool, instance, sandbox) never
// reaches the control plane (api, store, auth, secrets, deploy, builder,
// daemon): the gateway checks tokens through duct.Authenticator, which the
// daemon hands it.
var allowed = map[string][]string{
	".":                  {},
	"cmd/duct":           {"internal/cli"},
	"internal/id":        {},
	"internal/sandbox":   {},
	"internal/broker":    {},
	"internal/problem":   {"."},
	"internal/metrics":   {"."},
	"internal/toolchain": {"."},
	"internal/bundle":    {"."},
	"internal/manifest":  {"."},
	"internal/shim":      {"."},
	"internal/instance":  {".", "internal/id", "internal/sandbox"},
	"internal/pool":      {".", "internal/instance", "internal/metrics"},
	"internal/gateway":   {".", "internal/id", "internal/instance", "internal/metrics", "internal/pool", "internal/problem"},
	"internal/store":     {".", "internal/broker"},
	"internal/auth":      {".", "internal/store"},
	"internal/secrets":   {".", "internal/store"},
	"internal/logs":      {".", "internal/broker"},
	"internal/async":     {".", "internal/broker"},
	"internal/pubsub":    {".", "internal/broker"},
	"internal/trigger":   {".", "internal/id", "internal/problem", "internal/pubsub"},
	"internal/artifact":  {"internal/bundle"},
	"internal/builder":   {".", "internal/shim", "internal/toolchain"},
	"internal/deploy":    {".", "internal/builder", "internal/bundle", "internal/manifest", "internal/store"},
	"internal/api":       {".", "internal/auth", "internal/deploy", "internal/id", "internal/logs", "internal/problem", "internal/pubsub", "internal/secrets", "internal/store", "internal/trigger"},
	"internal/client":    {".", "internal/api", "internal/deploy", "internal/problem"},
	"internal/daemon": {".", "internal/api", "internal/artifact", "internal/async", "internal/auth", "internal/broker", "internal/builder", "internal/bundle",
		"internal/deploy", "internal/gateway", "internal/instance", "internal/logs", "internal/metrics", "internal/pool", "internal/sandbox",
		"internal/secrets", "internal/shim", "internal/store", "internal/toolchain", "internal/pubsub", "internal/pubsubgrpc", "internal/trigger"},
	"internal/cli": {".", "internal/api", "internal/bench", "internal/bundle", "internal/client", "internal/daemon",
		"internal/deploy", "internal/manifest", "internal/secrets"},
	"internal/bench":    {".", "internal/broker", "internal/bundle", "internal/daemon", "internal/pubsub"},
	"internal/ducttest": {".", "internal/bundle", "internal/daemon"},

	// Pub/Sub front ends.
	"internal/pubsubgrpc": {".", "internal/pubsub"},
}

// banned imports, with the reason.
var banned = map[string]string{
	"log":                        "use log/slog, injected",
	"github.com/pkg/errors":      "use the standard errors package",
	"io/ioutil":                  "deprecated; use io and os",
	"golang.org/x/exp/slog":      "use log/slog",
	"github.com/sirupsen/logrus": "use log/slog",
}

type pkgInfo struct {
	imports map[string]bool
	docs    []string // files carrying a package doc comment
}

// scan parses every non-test Go file under the module, except examples
// (user code, deployed to Duct) and the Go shim template (user-side code).
func scan(t *testing.T) map[string]*pkgInfo {
	t.Helper()
	pkgs := map[string]*pkgInfo{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch {
			case path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules"):
				return filepath.SkipDir
			case path == "examples" || path == "internal/shim/gomain" || path == "docs":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		p := pkgs[dir]
		if p == nil {
			p = &pkgInfo{imports: map[string]bool{}}
			pkgs[dir] = p
		}
		if f.Doc != nil && strings.HasPrefix(strings.TrimSpace(f.Doc.Text()), "Package ") {
			p.docs = append(p.docs, path)
		}
		for _, im := range f.Imports {
			ip, _ := strconv.Unquote(im.Path.Value)
			p.imports[ip] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestLayout(t *testing.T) {
	for dir, p := range scan(t) {
		want, known := allowed[dir]
		if !known {
			t.Errorf("package %s is not in the layout table (layout_test.go): add it with its allowed imports", dir)
			continue
		}
		ok := map[string]bool{}
		for _, w := range want {
			if w == "." {
				ok[module] = true
			} else {
				ok[module+"/"+w] = true
			}
		}
		var extra []string
		for ip := range p.imports {
			if why, bad := banned[ip]; bad {
				t.Errorf("%s imports %s: %s", dir, ip, why)
			}
			if (ip == module || strings.HasPrefix(ip, module+"/")) && !ok[ip] {
				extra = append(extra, strings.TrimPrefix(strings.TrimPrefix(ip, module), "/"))
			}
		}
		sort.Strings(extra)
		if len(extra) > 0 {
			t.Errorf("package %s imports %v, which the layout does not allow", dir, extra)
		}
		if dir == "." {
			for ip := range p.imports {
				if strings.Contains(strings.SplitN(ip, "/", 2)[0], ".") {
					t.Errorf("the root package imports %s: it may use only the standard library", ip)
				}
			}
		}
	}
}

// TestPackageDocs: every package says what it owns, exactly once.
func TestPackageDocs(t *testing.T) {
	for dir, p := range scan(t) {
		if strings.HasPrefix(dir, "cmd/") {
			continue
		}
		switch len(p.docs) {
		case 1:
		case 0:
			t.Errorf("package %s has no package doc comment", dir)
		default:
			t.Errorf("package %s has package doc comments in %d files: %v", dir, len(p.docs), p.docs)
		}
	}
}
