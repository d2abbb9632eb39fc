package builder

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/duct-dev/duct"
)

// Detect tells a source tree's runtime from its files: a dependency
// manifest first (go.mod, package.json, requirements.txt), then source
// extensions. It fails when the tree is ambiguous or holds no source.
func Detect(dir string) (duct.Runtime, error) {
	var found []duct.Runtime
	add := func(r duct.Runtime) {
		for _, x := range found {
			if x == r {
				return
			}
		}
		found = append(found, r)
	}
	switch {
	case firstExisting(dir, "go.mod") != "":
		return duct.RuntimeGo, nil
	case firstExisting(dir, "package.json") != "":
		return duct.RuntimeNode, nil
	case firstExisting(dir, "requirements.txt") != "":
		return duct.RuntimePython, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		switch ext := filepath.Ext(e.Name()); {
		case ext == ".go" && !strings.HasSuffix(e.Name(), "_test.go"):
			add(duct.RuntimeGo)
		case ext == ".js" || ext == ".mjs" || ext == ".cjs":
			add(duct.RuntimeNode)
		case ext == ".py":
			add(duct.RuntimePython)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", duct.Invalid("source", "no Go, Node.js or Python source found: add a .go, .js or .py file, or set runtime")
	}
	names := make([]string, len(found))
	for i, r := range found {
		names[i] = string(r)
	}
	return "", duct.Invalid("source", "source mixes runtimes (%s): set runtime in duct.yaml or with --runtime", strings.Join(names, ", "))
}
