package bundle

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/duct-dev/duct"
)

func TestExtractRejects(t *testing.T) {
	big := strings.Repeat("x", 2048)
	tests := []struct {
		name    string
		ents    []ent
		formats []string // nil: all
		lim     Limits
		want    error  // duct.ErrInvalid or duct.ErrTooLarge
		msg     string // in the error
	}{
		{name: "absolute", ents: []ent{file("/tmp/evil", "x")}, want: duct.ErrInvalid, msg: "absolute path"},
		{name: "dotdot", ents: []ent{file("../victim/evil", "x")}, want: duct.ErrInvalid, msg: `".." component`},
		{name: "inner dotdot", ents: []ent{file("a/../../victim/evil", "x")}, want: duct.ErrInvalid, msg: `".." component`},
		{name: "harmless dotdot", ents: []ent{file("a/../b", "x")}, want: duct.ErrInvalid, msg: `".." component`},
		{name: "dotdot dir", ents: []ent{dir("../victim/sub/")}, want: duct.ErrInvalid, msg: `".." component`},
		{name: "NUL", ents: []ent{file("a\x00b", "x")}, formats: []string{"zip"}, want: duct.ErrInvalid, msg: "NUL byte"},
		{name: "control", ents: []ent{file("a\x1b[2Jb", "x")}, want: duct.ErrInvalid, msg: "control character"},
		{name: "newline", ents: []ent{file("a\nb", "x")}, want: duct.ErrInvalid, msg: "control character"},
		{name: "not UTF-8", ents: []ent{file("caf\xe9", "x")}, want: duct.ErrInvalid, msg: "not valid UTF-8"},
		{name: "symlink not UTF-8", ents: []ent{link("l", "caf\xe9")}, want: duct.ErrInvalid, msg: "not valid UTF-8"},
		{name: "backslash", ents: []ent{file(`..\victim\evil`, "x")}, want: duct.ErrInvalid, msg: "backslash"},
		{name: "long path", ents: []ent{file(strings.Repeat("a/", 600)+"x", "x")}, want: duct.ErrInvalid, msg: "longer than 1024"},
		{name: "long component", ents: []ent{file(strings.Repeat("a", 256), "x")}, want: duct.ErrInvalid, msg: "component longer"},
		{name: "file names root", ents: []ent{file(".", "x")}, want: duct.ErrInvalid, msg: "names the archive root"},
		{name: "duplicate file", ents: []ent{file("a", "1"), file("a", "2")}, want: duct.ErrInvalid, msg: "duplicate"},
		{name: "duplicate spelled differently", ents: []ent{file("a/b", "1"), file("./a//b", "2")}, want: duct.ErrInvalid, msg: "duplicate"},
		{name: "duplicate dir", ents: []ent{dir("a/"), dir("a/")}, want: duct.ErrInvalid, msg: "duplicate"},
		{name: "dir over file", ents: []ent{file("a", "1"), dir("a/")}, want: duct.ErrInvalid, msg: "duplicate"},
		{name: "file over dir", ents: []ent{dir("a/"), file("a", "1")}, want: duct.ErrInvalid, msg: "duplicate"},
		{name: "file over symlink", ents: []ent{link("a", "b"), file("a", "1")}, want: duct.ErrInvalid, msg: "duplicate"},
		{name: "file below file", ents: []ent{file("a", "1"), file("a/b", "2")}, want: duct.ErrInvalid, msg: "not a directory"},
		{name: "through inner symlink", ents: []ent{dir("d/"), link("l", "d"), file("l/x", "1")}, want: duct.ErrInvalid, msg: "through symlink"},
		{name: "through escaping symlink", ents: []ent{link("l", "../victim"), file("l/secret", "pwned")}, want: duct.ErrInvalid, msg: "through symlink"},
		{name: "dir through symlink", ents: []ent{link("l", ".."), dir("l/victim/x/")}, want: duct.ErrInvalid, msg: "through symlink"},
		{name: "symlink through symlink", ents: []ent{link("l", ".."), link("l/victim/x", "secret")}, want: duct.ErrInvalid, msg: "through symlink"},
		{name: "symlink absolute", ents: []ent{link("l", "/etc/passwd")}, want: duct.ErrInvalid, msg: "absolute symlink target"},
		{name: "symlink escapes", ents: []ent{link("l", "../victim/secret")}, want: duct.ErrInvalid, msg: "outside"},
		{name: "symlink escapes deep", ents: []ent{link("a/b/l", "../../../victim")}, want: duct.ErrInvalid, msg: "outside"},
		{name: "symlink to root parent", ents: []ent{link("l", "a/../..")}, want: duct.ErrInvalid, msg: "outside"},
		{
			// b looks inside, until a/x (added later) turns out to be a
			// link to a: b is then a/../.. = outside.
			name: "symlink escapes through later link",
			ents: []ent{dir("a/"), link("b", "a/x/../.."), link("a/x", ".")},
			want: duct.ErrInvalid, msg: "outside",
		},
		{name: "symlink chain escapes", ents: []ent{link("a/up", ".."), link("b", "a/up/a/up/..")}, want: duct.ErrInvalid, msg: "outside"},
		{name: "symlink loop", ents: []ent{link("a", "b"), link("b", "a")}, want: duct.ErrInvalid, msg: "loop"},
		{name: "symlink self loop", ents: []ent{link("a", "a/x")}, want: duct.ErrInvalid, msg: "loop"},
		{name: "symlink control", ents: []ent{link("l", "a\x07")}, want: duct.ErrInvalid, msg: "control character"},
		{name: "symlink long", ents: []ent{link("l", strings.Repeat("a/", 600))}, want: duct.ErrInvalid, msg: "longer than"},
		{name: "hardlink outside", ents: []ent{hard("h", "../victim/secret")}, formats: []string{"tar", "tar.gz"}, want: duct.ErrInvalid, msg: "hard link target"},
		{name: "hardlink absolute", ents: []ent{hard("h", "/etc/passwd")}, formats: []string{"tar", "tar.gz"}, want: duct.ErrInvalid, msg: "hard link target"},
		{name: "hardlink missing", ents: []ent{hard("h", "later"), file("later", "x")}, formats: []string{"tar", "tar.gz"}, want: duct.ErrInvalid, msg: "hard link target"},
		{name: "hardlink to dir", ents: []ent{dir("d/"), hard("h", "d")}, formats: []string{"tar", "tar.gz"}, want: duct.ErrInvalid, msg: "hard link target"},
		{name: "hardlink to symlink", ents: []ent{file("f", "x"), link("l", "f"), hard("h", "l")}, formats: []string{"tar", "tar.gz"}, want: duct.ErrInvalid, msg: "hard link target"},
		{name: "hardlink through symlink", ents: []ent{file("d/f", "x"), link("l", "d"), hard("h", "l/f")}, formats: []string{"tar", "tar.gz"}, want: duct.ErrInvalid, msg: "hard link target"},
		{name: "hardlink over file", ents: []ent{file("f", "x"), hard("f", "f")}, formats: []string{"tar", "tar.gz"}, want: duct.ErrInvalid, msg: "duplicate"},
		{name: "char device", ents: []ent{{typ: 'c', name: "tty"}}, want: duct.ErrInvalid, msg: "device"},
		{name: "block device", ents: []ent{{typ: 'b', name: "sda"}}, want: duct.ErrInvalid, msg: "device"},
		{name: "fifo", ents: []ent{{typ: 'p', name: "pipe"}}, want: duct.ErrInvalid, msg: "FIFO"},
		{name: "socket", ents: []ent{{typ: 's', name: "sock"}}, formats: []string{"zip"}, want: duct.ErrInvalid, msg: "socket"},
		{name: "setuid", ents: []ent{{typ: 'f', name: "su", body: "x", mode: 0o4755}}, want: duct.ErrInvalid, msg: "setuid"},
		{name: "setgid", ents: []ent{{typ: 'f', name: "sg", body: "x", mode: 0o2755}}, want: duct.ErrInvalid, msg: "setgid"},
		{name: "sticky dir", ents: []ent{{typ: 'd', name: "tmp/", mode: 0o1777}}, want: duct.ErrInvalid, msg: "sticky"},
		{
			name: "too many files",
			ents: []ent{file("1", ""), file("2", ""), file("3", ""), file("4", "")},
			lim:  Limits{MaxFiles: 3}, want: duct.ErrTooLarge, msg: "more than 3 entries",
		},
		{
			name: "too many implied dirs",
			ents: []ent{file("a/b/c/d/e", "")},
			lim:  Limits{MaxFiles: 3}, want: duct.ErrTooLarge, msg: "more than 3 entries",
		},
		{name: "file too large", ents: []ent{file("big", big)}, lim: Limits{MaxExtracted: 1024}, want: duct.ErrTooLarge, msg: "extracted size exceeds 1024"},
		{
			name: "files too large together",
			ents: []ent{file("a", big[:1000]), file("b", big[:1000])},
			lim:  Limits{MaxExtracted: 1500}, want: duct.ErrTooLarge, msg: "extracted size exceeds",
		},
		{
			name: "hardlink copies too large",
			ents: []ent{file("a", big[:1000]), hard("b", "a")}, formats: []string{"tar", "tar.gz"},
			lim: Limits{MaxExtracted: 1500}, want: duct.ErrTooLarge, msg: "extracted size exceeds",
		},
		{name: "archive too large", ents: []ent{file("a", noise(2000))}, lim: Limits{MaxArchive: 1000}, want: duct.ErrTooLarge, msg: "archive exceeds 1000"},
		{name: "path over limit", ents: []ent{file("abcdefghijk", "")}, lim: Limits{MaxPath: 10}, want: duct.ErrInvalid, msg: "longer than 10"},
	}
	for _, tt := range tests {
		fmts := tt.formats
		if fmts == nil {
			fmts = allFormats
		}
		for _, format := range fmts {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				data := build(t, format, tt.ents)
				dst, check := sandbox(t)
				_, err := Extract(bytes.NewReader(data), dst, tt.lim)
				check()
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("Extract: %v, want %v containing %q", err, tt.want, tt.msg)
				}
				if got := names(t, dst); len(got) > 0 {
					t.Errorf("dst holds %q after failing", got)
				}
			})
		}
	}
}

func TestExtractRejectsMalformed(t *testing.T) {
	ents := []ent{file("a", strings.Repeat("hello ", 1000)), file("b", "world")}
	tgz := build(t, "tar.gz", ents)
	tarb := build(t, "tar", ents)
	zipb := build(t, "zip", ents)
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0xff
		return b
	}
	tests := []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "empty input"},
		{"text", []byte("hello, world\n"), "unknown format"},
		{"v7 tar or junk", bytes.Repeat([]byte{'x'}, 1024), "unknown format"},
		{"truncated tar.gz", tgz[:len(tgz)/2], "truncated or corrupt"},
		{"truncated gzip trailer", tgz[:len(tgz)-4], "truncated or corrupt"},
		{"gzip checksum", flip(tgz, len(tgz)-6), "truncated or corrupt"},
		{"gzip header only", tgz[:10], "truncated or corrupt"},
		{"truncated tar", tarb[:700], "truncated or corrupt"},
		{"tar header checksum", flip(tarb, 100), "truncated or corrupt"},
		{"tar trailing data", append(bytes.Clone(tarb), "junk"...), "data after the end"},
		{"tar.gz trailing data", append(bytes.Clone(tgz), "junk"...), "truncated or corrupt"},
		{"truncated zip", zipb[:len(zipb)-30], "truncated or corrupt"},
		{"zip magic only", []byte("PK\x03\x04"), "truncated or corrupt"},
		{"zip content corrupt", flip(zipb, 40), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst, check := sandbox(t)
			_, err := Extract(bytes.NewReader(tt.data), dst, Limits{})
			check()
			if !errors.Is(err, duct.ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Extract: %v, want ErrInvalid containing %q", err, tt.msg)
			}
			if got := names(t, dst); len(got) > 0 {
				t.Errorf("dst holds %q after failing", got)
			}
		})
	}
}

// TestExtractBombs feeds highly compressible content above the limit: the
// headers may claim anything, only bytes written count.
func TestExtractBombs(t *testing.T) {
	zeros := strings.Repeat("\x00", 8<<20)
	for _, format := range []string{"tar.gz", "zip"} {
		t.Run(format, func(t *testing.T) {
			data := build(t, format, []ent{file("bomb", zeros)})
			if len(data) > 64<<10 {
				t.Fatalf("bomb is %d bytes: not much of a bomb", len(data))
			}
			dst, check := sandbox(t)
			_, err := Extract(bytes.NewReader(data), dst, Limits{MaxExtracted: 1 << 20})
			check()
			if !errors.Is(err, duct.ErrTooLarge) {
				t.Fatalf("Extract: %v, want ErrTooLarge", err)
			}
		})
	}
	// A zip whose headers understate the size: the reader must not trust
	// them either.
	t.Run("zip lying sizes", func(t *testing.T) {
		data := build(t, "zip", []ent{file("bomb", zeros)})
		data = lieAboutSize(t, data, 100)
		dst, check := sandbox(t)
		_, err := Extract(bytes.NewReader(data), dst, Limits{MaxExtracted: 1 << 20})
		check()
		if !archiveError(err) {
			t.Fatalf("Extract: %v, want an archive error", err)
		}
	})
	// Header-only entries whose bodies would be skipped are bounded by the
	// uncompressed stream limit.
	t.Run("tar.gz padding", func(t *testing.T) {
		var raw bytes.Buffer
		raw.Write(makeTar(t, []ent{file("a", "x")}))
		raw.Write(make([]byte, 4<<20))
		dst, check := sandbox(t)
		_, err := Extract(bytes.NewReader(gz(t, raw.Bytes())), dst, Limits{})
		check()
		if !errors.Is(err, duct.ErrInvalid) || !strings.Contains(err.Error(), "padding") {
			t.Fatalf("Extract: %v, want ErrInvalid about padding", err)
		}
	})
}

// lieAboutSize rewrites the uncompressed sizes a zip's headers claim for
// its entries.
func lieAboutSize(t testing.TB, data []byte, size uint32) []byte {
	t.Helper()
	data = bytes.Clone(data)
	le := func(b []byte, v uint32) { b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24) }
	n := 0
	for i := 0; i+4 <= len(data); i++ {
		switch string(data[i : i+4]) {
		case "PK\x01\x02": // central directory: uncompressed size at 24
			le(data[i+24:], size)
			n++
		case "PK\x07\x08": // data descriptor: uncompressed size at 12
			le(data[i+12:], size)
			n++
		}
	}
	if n == 0 {
		t.Fatal("no zip headers found")
	}
	return data
}

func TestExtractValid(t *testing.T) {
	ents := []ent{
		dir("./"),
		file("./main.go", "package function\n"),
		{typ: 'f', name: "run.sh", body: "#!/bin/sh\n", mode: 0o700},
		{typ: 'f', name: "private", body: "p", mode: 0o600},
		{typ: 'f', name: "group-exec", body: "g", mode: 0o610},
		file("a/b/c.txt", "deep"),
		dir("a/"), // implied above, named now
		{typ: 'd', name: "ro/", mode: 0o555},
		file("ro/inside", "still writable while extracting"),
		dir("empty/"),
		link("c", "a/b/c.txt"),
		link("a/up", ".."),
		link("a/b/self", "."),
		link("dangling", "not/there"),
		link("via", "a/up/a/b/c.txt"),
		link("node_modules/.bin/tool", "../tool/cli.js"),
		file("node_modules/tool/cli.js", "cli"),
	}
	want := map[string]string{ // path → mode, content or target
		"main.go":                  "-rw-r--r-- package function\n",
		"run.sh":                   "-rwxr-xr-x #!/bin/sh\n",
		"private":                  "-rw-r--r-- p",
		"group-exec":               "-rwxr-xr-x g",
		"a":                        "drwxr-xr-x",
		"a/b":                      "drwxr-xr-x",
		"a/b/c.txt":                "-rw-r--r-- deep",
		"ro":                       "drwxr-xr-x",
		"ro/inside":                "-rw-r--r-- still writable while extracting",
		"empty":                    "drwxr-xr-x",
		"c":                        "L a/b/c.txt",
		"a/up":                     "L ..",
		"a/b/self":                 "L .",
		"dangling":                 "L not/there",
		"via":                      "L a/up/a/b/c.txt",
		"node_modules":             "drwxr-xr-x",
		"node_modules/.bin":        "drwxr-xr-x",
		"node_modules/.bin/tool":   "L ../tool/cli.js",
		"node_modules/tool":        "drwxr-xr-x",
		"node_modules/tool/cli.js": "-rw-r--r-- cli",
	}
	var digests []string
	for _, format := range allFormats {
		t.Run(format, func(t *testing.T) {
			dst, check := sandbox(t)
			old := setUmask(0o077) // modes must not depend on it
			st, err := Extract(bytes.NewReader(build(t, format, ents)), dst, Limits{})
			setUmask(old)
			check()
			if err != nil {
				t.Fatal(err)
			}
			checkTree(t, dst)
			if got := describe(t, dst); !mapsEqual(got, want) {
				t.Errorf("tree:\n%s\nwant:\n%s", show(got), show(want))
			}
			wantStats := Stats{Format: format, Files: 7, Dirs: 7, Symlinks: 6, Bytes: st.Bytes, ArchiveBytes: st.ArchiveBytes}
			if st != wantStats || st.Bytes != 67 || st.ArchiveBytes == 0 {
				t.Errorf("stats %+v, want %+v with 67 bytes", st, wantStats)
			}
			d, err := Digest(dst)
			if err != nil {
				t.Fatal(err)
			}
			digests = append(digests, d)
		})
	}
	if len(slices.Compact(digests)) != 1 {
		t.Errorf("digests differ between formats: %q", digests)
	}
}

func TestExtractHardlinkCopies(t *testing.T) {
	ents := []ent{exe("bin/tool", "#!/bin/sh\n"), hard("bin/alias", "./bin/tool")}
	for _, format := range []string{"tar", "tar.gz"} {
		dst, check := sandbox(t)
		st, err := Extract(bytes.NewReader(build(t, format, ents)), dst, Limits{})
		check()
		if err != nil {
			t.Fatal(err)
		}
		got := describe(t, dst)
		want := map[string]string{"bin": "drwxr-xr-x", "bin/tool": "-rwxr-xr-x #!/bin/sh\n", "bin/alias": "-rwxr-xr-x #!/bin/sh\n"}
		if !mapsEqual(got, want) {
			t.Errorf("%s: tree:\n%s\nwant:\n%s", format, show(got), show(want))
		}
		if st.Files != 2 || st.Bytes != 20 {
			t.Errorf("%s: stats %+v", format, st)
		}
		a, _ := os.Stat(filepath.Join(dst, "bin/tool"))
		b, _ := os.Stat(filepath.Join(dst, "bin/alias"))
		if os.SameFile(a, b) {
			t.Errorf("%s: hard link kept as a link, want a copy", format)
		}
	}
}

func TestExtractDestination(t *testing.T) {
	data := build(t, "tar", []ent{file("a", "x")})
	t.Run("missing", func(t *testing.T) {
		_, err := Extract(bytes.NewReader(data), filepath.Join(t.TempDir(), "nope"), Limits{})
		if err == nil {
			t.Fatal("Extract into a missing directory succeeded")
		}
	})
	t.Run("not empty", func(t *testing.T) {
		dst := t.TempDir()
		os.WriteFile(filepath.Join(dst, "keep"), []byte("k"), 0o644)
		_, err := Extract(bytes.NewReader(data), dst, Limits{})
		if err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("Extract into a non-empty directory: %v", err)
		}
		if got := names(t, dst); !slices.Equal(got, []string{"keep"}) {
			t.Errorf("dst holds %q", got)
		}
	})
	t.Run("empty archive", func(t *testing.T) {
		for _, format := range allFormats {
			dst, check := sandbox(t)
			st, err := Extract(bytes.NewReader(build(t, format, nil)), dst, Limits{})
			check()
			if err != nil || st.Files+st.Dirs+st.Symlinks != 0 {
				t.Errorf("%s: %+v, %v", format, st, err)
			}
		}
	})
}

// describe maps every path under dir to "mode content" for files, "mode"
// for directories and "L target" for symlinks.
func describe(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "L " + target
		case info.IsDir():
			out[rel] = info.Mode().String()
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = info.Mode().String() + " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func show(m map[string]string) string {
	var lines []string
	for k, v := range m {
		lines = append(lines, "  "+k+": "+v)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// noise returns n incompressible bytes.
func noise(n int) string {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{}).Read(b)
	return string(b)
}

// TestExtractReaderFails: a failing reader is the reader's error, not a
// bad archive.
func TestExtractReaderFails(t *testing.T) {
	boom := errors.New("connection reset")
	for _, format := range allFormats {
		data := build(t, format, []ent{file("a", noise(100<<10))})
		r := io.MultiReader(bytes.NewReader(data[:len(data)/2]), iotest.ErrReader(boom))
		dst, check := sandbox(t)
		_, err := Extract(r, dst, Limits{})
		check()
		if !errors.Is(err, boom) || errors.Is(err, duct.ErrInvalid) {
			t.Errorf("%s: Extract: %v, want the reader's error", format, err)
		}
		if got := names(t, dst); len(got) > 0 {
			t.Errorf("%s: dst holds %q after failing", format, got)
		}
	}
}
