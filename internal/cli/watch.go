package cli

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/duct-dev/duct/internal/bundle"
	"github.com/duct-dev/duct/internal/manifest"
)

// isFunctionDir reports whether dir holds a function at its top level: a
// duct.yaml, a dependency manifest or a source file.
func isFunctionDir(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		switch n := e.Name(); {
		case n == manifest.FileName, n == "go.mod", n == "package.json", n == "requirements.txt":
			return true
		case strings.HasSuffix(n, "_test.go"):
		case strings.HasSuffix(n, ".go"), strings.HasSuffix(n, ".js"), strings.HasSuffix(n, ".mjs"),
			strings.HasSuffix(n, ".cjs"), strings.HasSuffix(n, ".py"):
			return true
		}
	}
	return false
}

// discover finds the function folders in root: its subdirectories that
// hold a function, or, when root holds one itself, root and those of its
// subdirectories that have a duct.yaml of their own. ignore (an absolute
// path, e.g. the data dir) is never a function.
func discover(root, ignore string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	self := isFunctionDir(root)
	var out []string
	if self {
		out = append(out, root)
	}
	for _, e := range ents {
		sub := filepath.Join(root, e.Name())
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || sub == ignore || bundle.DefaultSkip(e.Name(), e) {
			continue
		}
		if self {
			if _, err := os.Stat(filepath.Join(sub, manifest.FileName)); err == nil {
				out = append(out, sub)
			}
		} else if isFunctionDir(sub) {
			out = append(out, sub)
		}
	}
	sort.Strings(out[min(len(out), btoi(self)):])
	return out, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// snapshot is what a folder's files looked like: path → size, time and
// mode. Two differ when a file was added, removed or written.
type snapshot map[string]string

// take walks dir as a bundle of src would hold it.
func take(src *source) (snapshot, error) {
	s := snapshot{}
	err := filepath.WalkDir(src.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src.dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if src.skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // gone since the listing
		}
		s[rel] = fmt.Sprintf("%d %d %v", info.Size(), info.ModTime().UnixNano(), info.Mode())
		return nil
	})
	return s, err
}

// changed names a path that differs between two snapshots, or "".
func (s snapshot) changed(old snapshot) string {
	var diff []string
	for p, v := range s {
		if old[p] != v {
			diff = append(diff, p)
		}
	}
	for p := range old {
		if _, ok := s[p]; !ok {
			diff = append(diff, p)
		}
	}
	if len(diff) == 0 {
		return ""
	}
	sort.Strings(diff)
	if len(diff) > 1 {
		return fmt.Sprintf("%s and %d more", diff[0], len(diff)-1)
	}
	return diff[0]
}
