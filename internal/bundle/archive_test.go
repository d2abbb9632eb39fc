package bundle

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/duct-dev/duct"
)

// ent is an archive entry for tests, independent of the format.
type ent struct {
	typ  byte // 'f' file, 'd' dir, 'l' symlink, 'h' hard link, 'c' char dev, 'b' block dev, 'p' fifo, 's' socket
	name string
	body string // files; target for links
	mode int64  // permission and special bits; 0 means 0644 (files) or 0755 (dirs)
}

func file(name, body string) ent   { return ent{typ: 'f', name: name, body: body} }
func exe(name, body string) ent    { return ent{typ: 'f', name: name, body: body, mode: 0o755} }
func dir(name string) ent          { return ent{typ: 'd', name: name} }
func link(name, target string) ent { return ent{typ: 'l', name: name, body: target} }
func hard(name, target string) ent { return ent{typ: 'h', name: name, body: target} }

func (e ent) perm() int64 {
	if e.mode != 0 {
		return e.mode
	}
	if e.typ == 'd' {
		return 0o755
	}
	return 0o644
}

func makeTar(t testing.TB, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Name: e.name, Mode: e.perm(), Format: tar.FormatPAX}
		switch e.typ {
		case 'f':
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.body))
		case 'd':
			hdr.Typeflag = tar.TypeDir
		case 'l':
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.body
		case 'h':
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, e.body
		case 'c':
			hdr.Typeflag = tar.TypeChar
		case 'b':
			hdr.Typeflag = tar.TypeBlock
		case 'p':
			hdr.Typeflag = tar.TypeFifo
		default:
			t.Fatalf("tar cannot hold entry type %c", e.typ)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if e.typ == 'f' {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func makeZip(t testing.TB, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := fs.FileMode(e.perm() & 0o777)
		if e.perm()&0o4000 != 0 {
			mode |= fs.ModeSetuid
		}
		if e.perm()&0o2000 != 0 {
			mode |= fs.ModeSetgid
		}
		if e.perm()&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		switch e.typ {
		case 'f':
		case 'd':
			mode |= fs.ModeDir
		case 'l':
			mode |= fs.ModeSymlink
		case 'c':
			mode |= fs.ModeDevice | fs.ModeCharDevice
		case 'b':
			mode |= fs.ModeDevice
		case 'p':
			mode |= fs.ModeNamedPipe
		case 's':
			mode |= fs.ModeSocket
		default:
			t.Fatalf("zip cannot hold entry type %c", e.typ)
		}
		fh.SetMode(mode)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatalf("zip header %q: %v", e.name, err)
		}
		if e.typ == 'f' || e.typ == 'l' {
			w.Write([]byte(e.body))
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// build makes ents in format: "tar", "tar.gz" or "zip".
func build(t testing.TB, format string, ents []ent) []byte {
	t.Helper()
	switch format {
	case "tar":
		return makeTar(t, ents)
	case "tar.gz":
		return gz(t, makeTar(t, ents))
	case "zip":
		return makeZip(t, ents)
	}
	t.Fatalf("unknown format %q", format)
	return nil
}

var allFormats = []string{"tar.gz", "tar", "zip"}

// sandbox makes parent/dst (empty) and parent/victim (holding a secret)
// and returns dst and a check that nothing outside dst changed.
func sandbox(t testing.TB) (dst string, check func()) {
	t.Helper()
	parent := t.TempDir()
	dst = filepath.Join(parent, "dst")
	victim := filepath.Join(parent, "victim")
	for _, d := range []string{dst, victim} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(victim, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dst, func() {
		t.Helper()
		if got := names(t, parent); !slices.Equal(got, []string{"dst", "victim"}) {
			t.Errorf("beside dst: %q, want only dst and victim", got)
		}
		if got := names(t, victim); !slices.Equal(got, []string{"secret"}) {
			t.Errorf("victim holds %q, want only secret", got)
		}
		info, err := os.Lstat(filepath.Join(victim, "secret"))
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 || info.Size() != 1 {
			t.Errorf("victim/secret changed: %v, %v", info, err)
		}
		if b, _ := os.ReadFile(filepath.Join(victim, "secret")); string(b) != "s" {
			t.Errorf("victim/secret now holds %q", b)
		}
	}
}

func names(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	return out
}

// checkTree verifies an extracted tree: normalised modes, and every
// symlink resolving (if it resolves) inside dst.
func checkTree(t testing.TB, dst string) {
	t.Helper()
	real, err := filepath.EvalSymlinks(dst)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode()
		switch {
		case mode.IsDir():
			if mode.Perm() != 0o755 || mode&^(fs.ModeDir|0o777) != 0 {
				t.Errorf("%s: directory mode %v", p, mode)
			}
		case mode.IsRegular():
			if mode != 0o644 && mode != 0o755 {
				t.Errorf("%s: file mode %v", p, mode)
			}
		case mode&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			if filepath.IsAbs(target) {
				t.Errorf("%s: absolute symlink %q", p, target)
			}
			if r, err := filepath.EvalSymlinks(p); err == nil && r != real && !strings.HasPrefix(r, real+"/") {
				t.Errorf("%s: symlink resolves to %s, outside %s", p, r, real)
			}
		default:
			t.Errorf("%s: unexpected mode %v", p, mode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// archiveError reports whether err is one Extract may return for a bad
// archive.
func archiveError(err error) bool {
	return errors.Is(err, duct.ErrInvalid) || errors.Is(err, duct.ErrTooLarge)
}

// setUmask sets the process umask and returns the old one.
func setUmask(m int) int { return syscall.Umask(m) }
