package bundle

import (
	"fmt"
	"io/fs"
	"os"
)

// entry is one path of a tree on disk, as Pack and Digest see it.
type entry struct {
	path   string // slash-separated, relative to the root
	kind   kind
	exec   bool   // files
	target string // symlinks
}

// scan lists the tree under root in lexical order, parents before
// children, without following symlinks. skip may prune paths. Only
// directories, regular files and symlinks are allowed. When strict, so
// that Pack never writes an archive Extract would refuse (whatever the
// size limits), names and symlinks must pass Extract's checks too.
func scan(root *os.Root, skip func(rel string, d fs.DirEntry) bool, strict bool) ([]entry, error) {
	var out []entry
	t := newTree()
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if skip != nil && skip(p, d) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if _, _, reason := cleanName(p, DefaultMaxPath); strict && reason != "" {
			return fmt.Errorf("%q: %s", p, reason)
		}
		e := entry{path: p}
		switch d.Type() {
		case fs.ModeDir:
			e.kind = kindDir
		case 0:
			info, err := d.Info()
			if err != nil {
				return err
			}
			e.kind, e.exec = kindFile, info.Mode()&0o111 != 0
		case fs.ModeSymlink:
			target, err := root.Readlink(p)
			if err != nil {
				return err
			}
			if reason := checkTarget(target, DefaultMaxPath); strict && reason != "" {
				return fmt.Errorf("%q: %s", p, reason)
			}
			e.kind, e.target = kindSymlink, target
		default:
			return fmt.Errorf("%q: unsupported file type %v", p, d.Type())
		}
		out = append(out, e)
		if !strict {
			return nil
		}
		dir, base, err := t.parent(p, func(string) error { return fmt.Errorf("%q: walked before its parent", p) })
		if err != nil {
			return err
		}
		t.add(dir, base, e.kind).target = e.target
		return nil
	})
	if err != nil {
		return nil, err
	}
	if l, err := t.checkLinks(); strict && err != nil {
		return nil, fmt.Errorf("symlink %q to %q %v", l.path, l.target, err)
	}
	return out, nil
}
