package bundle

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/duct-dev/duct"
)

// extractor writes entries into root, checking each against the tree
// model and the limits. The format readers feed it.
type extractor struct {
	root    *os.Root
	lim     Limits
	tree    *tree
	entries int // counted against lim.MaxFiles
	stats   Stats
}

// count charges one entry against MaxFiles.
func (x *extractor) count() error {
	x.entries++
	if x.entries > x.lim.MaxFiles {
		return fmt.Errorf("archive: %w: more than %d entries", duct.ErrTooLarge, x.lim.MaxFiles)
	}
	return nil
}

// name checks a raw entry name; dir says whether the entry is a directory
// (only those may end in a slash).
func (x *extractor) name(raw string, dir bool) (string, error) {
	name, slash, reason := cleanName(raw, x.lim.MaxPath)
	switch {
	case reason != "":
		return "", invalid(raw, "%s", reason)
	case slash && !dir:
		return "", invalid(raw, "name ends in a slash but the entry is not a directory")
	case name == "" && !dir:
		return "", invalid(raw, "names the archive root")
	}
	return name, nil
}

// place finds the directory for a new entry, implying missing parents,
// and returns it with the entry's base name and whatever the model already
// holds there.
func (x *extractor) place(raw, name string) (dir *node, base string, existing *node, err error) {
	dir, base, err = x.tree.parent(name, x.implyDir)
	if err != nil {
		var pe *parentError
		if errors.As(err, &pe) {
			err = invalid(raw, "%v", pe)
		}
		return nil, "", nil, err
	}
	return dir, base, dir.children[base], nil
}

// implyDir creates a directory an entry's path needs but no entry named.
func (x *extractor) implyDir(p string) error {
	if err := x.count(); err != nil {
		return err
	}
	return x.mkdir(p)
}

func (x *extractor) mkdir(p string) error {
	if err := x.root.Mkdir(p, 0o755); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	// The umask may have narrowed the mode.
	if err := x.root.Chmod(p, 0o755); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	x.stats.Dirs++
	return nil
}

// dir extracts a directory entry.
func (x *extractor) dir(raw string) error {
	if err := x.count(); err != nil {
		return err
	}
	name, err := x.name(raw, true)
	if err != nil || name == "" {
		return err
	}
	dir, base, n, err := x.place(raw, name)
	if err != nil {
		return err
	}
	// A directory a previous path implied may be named once.
	if n != nil {
		if n.kind != kindDir || n.explicit {
			return invalid(raw, "duplicate entry")
		}
		n.explicit = true
		return nil
	}
	if err := x.mkdir(name); err != nil {
		return err
	}
	x.tree.add(dir, base, kindDir).explicit = true
	return nil
}

// file extracts a regular file from r. size is what the archive claims,
// or -1; only the bytes actually written count against MaxExtracted.
func (x *extractor) file(raw string, exec bool, r io.Reader, size int64) error {
	name, err := x.add(raw, kindFile, func(n *node) { n.exec = exec })
	if err != nil {
		return err
	}
	return x.write(raw, name, exec, r, size)
}

// add checks and counts a new file or symlink entry and records it in the
// model, returning its clean name; set fills in the node.
func (x *extractor) add(raw string, k kind, set func(*node)) (string, error) {
	if err := x.count(); err != nil {
		return "", err
	}
	name, err := x.name(raw, false)
	if err != nil {
		return "", err
	}
	dir, base, n, err := x.place(raw, name)
	if err != nil {
		return "", err
	}
	if n != nil {
		return "", invalid(raw, "duplicate entry")
	}
	set(x.tree.add(dir, base, k))
	return name, nil
}

func (x *extractor) write(raw, name string, exec bool, r io.Reader, size int64) error {
	room := x.lim.MaxExtracted - x.stats.Bytes
	if size > room {
		return x.tooLarge()
	}
	perm := os.FileMode(0o644)
	if exec {
		perm = 0o755
	}
	// O_EXCL: the model says the name is new, and the kernel agrees or
	// this fails; a symlink there is never followed.
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer f.Close() // a no-op after the Close below
	src := &errReader{r: r}
	n, err := io.Copy(f, io.LimitReader(src, room))
	x.stats.Bytes += n
	if err == nil && n == room {
		// At the limit: one more byte means too large. Reading to the end
		// also lets zip check the entry's CRC.
		var b [1]byte
		if k, _ := io.ReadFull(src, b[:]); k > 0 {
			return x.tooLarge()
		}
	}
	if src.err != nil {
		return invalid(raw, "truncated or corrupt content: %v", src.err)
	}
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if err := f.Chmod(perm); err != nil { // the umask may have narrowed it
		return fmt.Errorf("archive: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	x.stats.Files++
	return nil
}

func (x *extractor) tooLarge() error {
	return fmt.Errorf("archive: %w: extracted size exceeds %d bytes", duct.ErrTooLarge, x.lim.MaxExtracted)
}

// symlink records a symbolic link; finish creates it once the whole tree
// is known.
func (x *extractor) symlink(raw, target string) error {
	if reason := checkTarget(target, x.lim.MaxPath); reason != "" {
		return invalid(raw, "%s", reason)
	}
	_, err := x.add(raw, kindSymlink, func(n *node) { n.target = target })
	return err
}

// hardlink writes a copy of a regular file extracted earlier.
func (x *extractor) hardlink(raw, target string) error {
	t, _, reason := cleanName(target, x.lim.MaxPath)
	var src *node
	if reason == "" && t != "" {
		src = x.tree.lookup(t)
	}
	if src == nil || src.kind != kindFile {
		return invalid(raw, "hard link target %q is not a regular file extracted earlier", target)
	}
	name, err := x.add(raw, kindFile, func(n *node) { n.exec = src.exec })
	if err != nil {
		return err
	}
	f, err := x.root.Open(src.path)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer f.Close()
	return x.write(raw, name, src.exec, f, -1)
}

// finish checks every symlink against the complete tree, then creates
// them.
func (x *extractor) finish() error {
	if l, err := x.tree.checkLinks(); err != nil {
		return invalid(l.path, "symlink to %q %v", l.target, err)
	}
	for _, l := range x.tree.links {
		if err := x.root.Symlink(l.target, l.path); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		x.stats.Symlinks++
	}
	return nil
}
