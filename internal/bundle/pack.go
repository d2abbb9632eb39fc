package bundle

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// Pack writes the tree under dir to w as a tar.gz that depends only on the
// tree: paths in lexical order, parents first; modes normalised as Extract
// normalises them (directories 0755, files 0755 or 0644); times zero; owner
// 0:0 without names. Identical trees give identical bytes (with the same
// Go release: compression may change between releases).
//
// Symlinks are kept as links if they are relative and resolve inside dir;
// any other symlink, a device, FIFO or socket, or a name Extract would
// refuse, fails Pack. skip, if not nil, is asked about every path
// (slash-separated, relative to dir); a skipped directory is skipped
// whole.
func Pack(dir string, w io.Writer, skip func(rel string, d fs.DirEntry) bool) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	defer root.Close()
	entries, err := scan(root, skip, true)
	if err != nil {
		return fmt.Errorf("pack %s: %w", dir, err)
	}
	zw := gzip.NewWriter(w) // no name, no time: deterministic
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := packEntry(root, tw, e); err != nil {
			return fmt.Errorf("pack %s: %q: %w", dir, e.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	return nil
}

var epoch = time.Unix(0, 0)

func packEntry(root *os.Root, tw *tar.Writer, e entry) error {
	hdr := &tar.Header{Name: e.path, ModTime: epoch, Mode: 0o644, Format: tar.FormatPAX}
	switch e.kind {
	case kindDir:
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, e.path+"/", 0o755
		return tw.WriteHeader(hdr)
	case kindSymlink:
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.target, 0o777
		return tw.WriteHeader(hdr)
	}
	f, err := root.Open(e.path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	// Opening follows links (inside the root only): check it is still
	// the regular file scan saw.
	if !info.Mode().IsRegular() {
		return fmt.Errorf("changed while packing")
	}
	if e.exec {
		hdr.Mode = 0o755
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, info.Size()); err != nil {
		return fmt.Errorf("changed while packing: %w", err)
	}
	return nil
}

// DefaultSkip leaves out what a source bundle should not carry: version
// control, installed dependencies, caches, virtual environments, Duct's
// own state and editor litter.
func DefaultSkip(rel string, d fs.DirEntry) bool {
	switch base := path.Base(rel); base {
	case ".git", "node_modules", "__pycache__", ".venv", ".duct", ".DS_Store":
		return true
	default:
		return strings.HasSuffix(base, ".pyc") && !d.IsDir()
	}
}
