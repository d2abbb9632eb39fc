package bundle

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeTree creates files under dir from a map of path → content; a
// content starting with "->" makes a symlink, "x:" an executable, and a
// path ending in "/" an empty directory.
func writeTree(t testing.TB, dir string, tree map[string]string, order []string) {
	t.Helper()
	if order == nil {
		for p := range tree {
			order = append(order, p)
		}
		slices.Sort(order)
	}
	for _, p := range order {
		c := tree[p]
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(p, "/"):
			err = os.MkdirAll(full, 0o700)
		case strings.HasPrefix(c, "->"):
			err = os.Symlink(c[2:], full)
		case strings.HasPrefix(c, "x:"):
			err = os.WriteFile(full, []byte(c[2:]), 0o700)
		default:
			err = os.WriteFile(full, []byte(c), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

var sampleTree = map[string]string{
	"main.go":          "package function\n",
	"bin/run":          "x:#!/bin/sh\necho hi\n",
	"a/b/c.txt":        "deep",
	"a/b-c":            "sorted after a/b/ by bytes, before it by walk",
	"empty/":           "",
	"link":             "->a/b/c.txt",
	"a/up":             "->..",
	"dangling":         "->nowhere",
	"ünïcode name.txt": "ok",
}

func pack(t testing.TB, dir string, skip func(string, fs.DirEntry) bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Pack(dir, &buf, skip); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPackRoundTrip(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, sampleTree, nil)
	want, err := Digest(src)
	if err != nil {
		t.Fatal(err)
	}
	dst, check := sandbox(t)
	st, err := Extract(bytes.NewReader(pack(t, src, nil)), dst, Limits{})
	check()
	if err != nil {
		t.Fatal(err)
	}
	if st.Format != "tar.gz" || st.Files != 5 || st.Symlinks != 3 || st.Dirs != 4 {
		t.Errorf("stats %+v", st)
	}
	checkTree(t, dst)
	got, err := Digest(dst)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || !strings.HasPrefix(got, "sha256:") || len(got) != len("sha256:")+64 {
		t.Errorf("digest after round trip %s, want %s", got, want)
	}
	if m := describe(t, dst)["bin/run"]; m != "-rwxr-xr-x #!/bin/sh\necho hi\n" {
		t.Errorf("bin/run: %q", m)
	}
}

// TestPackDeterministic packs the same tree made twice, in another order,
// with other times and other non-exec permission bits: same bytes.
func TestPackDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, sampleTree, nil)
	var rev []string
	for p := range sampleTree {
		rev = append(rev, p)
	}
	slices.Sort(rev)
	slices.Reverse(rev)
	writeTree(t, b, sampleTree, rev)
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	filepath.WalkDir(b, func(p string, d fs.DirEntry, err error) error {
		if d.Type().IsRegular() {
			os.Chmod(p, 0o640|os.FileMode(0o100*btoi(strings.HasSuffix(p, "run"))))
		}
		os.Lchown(p, os.Getuid(), os.Getgid())
		return os.Chtimes(p, old, old)
	})
	pa, pb := pack(t, a, nil), pack(t, b, nil)
	if !bytes.Equal(pa, pb) {
		t.Fatal("Pack of identical trees differs")
	}
	if again := pack(t, a, nil); !bytes.Equal(pa, again) {
		t.Fatal("Pack of the same tree twice differs")
	}
	// And a change anywhere shows.
	os.WriteFile(filepath.Join(b, "a/b/c.txt"), []byte("deeP"), 0o644)
	if bytes.Equal(pa, pack(t, b, nil)) {
		t.Fatal("Pack ignored a content change")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestPackSkip(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"index.js":                  "x",
		".git/config":               "x",
		".gitignore":                "kept",
		"node_modules/lib/index.js": "x",
		"sub/node_modules":          "a file, skipped too",
		"pkg/__pycache__/m.pyc":     "x",
		"pkg/m.py":                  "kept",
		"pkg/stale.pyc":             "x",
		".venv/bin/python":          "->/usr/bin/python3", // outside: fine, skipped
		".duct/state":               "x",
		".DS_Store":                 "x",
		"deep/.DS_Store":            "x",
	}, nil)
	dst, check := sandbox(t)
	if _, err := Extract(bytes.NewReader(pack(t, src, DefaultSkip)), dst, Limits{}); err != nil {
		t.Fatal(err)
	}
	check()
	var got []string
	for p := range describe(t, dst) {
		got = append(got, p)
	}
	slices.Sort(got)
	want := []string{".gitignore", "deep", "index.js", "pkg", "pkg/m.py", "sub"}
	if !slices.Equal(got, want) {
		t.Errorf("packed %q, want %q", got, want)
	}
}

func TestPackRefuses(t *testing.T) {
	tests := []struct {
		name string
		tree map[string]string
		msg  string
	}{
		{"absolute symlink", map[string]string{"l": "->/etc/passwd"}, "absolute symlink target"},
		{"escaping symlink", map[string]string{"l": "->../x"}, "outside"},
		{"escaping through link", map[string]string{"a/up": "->..", "l": "->a/up/.."}, "outside"},
		{"loop", map[string]string{"a": "->b", "b": "->a"}, "loop"},
		{"control character", map[string]string{"a\tb": "x"}, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, tt.tree, nil)
			err := Pack(src, new(bytes.Buffer), nil)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Pack: %v, want an error containing %q", err, tt.msg)
			}
		})
	}
	t.Run("fifo", func(t *testing.T) {
		src := t.TempDir()
		if err := syscall.Mkfifo(filepath.Join(src, "pipe"), 0o644); err != nil {
			t.Skip(err)
		}
		if err := Pack(src, new(bytes.Buffer), nil); err == nil || !strings.Contains(err.Error(), "unsupported file type") {
			t.Fatalf("Pack: %v", err)
		}
		if _, err := Digest(src); err == nil {
			t.Fatal("Digest of a FIFO succeeded")
		}
	})
	t.Run("missing", func(t *testing.T) {
		if err := Pack(filepath.Join(t.TempDir(), "nope"), new(bytes.Buffer), nil); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Pack: %v", err)
		}
	})
}

func TestDigest(t *testing.T) {
	base := map[string]string{"a/f": "x", "l": "->a/f", "e/": ""}
	digest := func(tree map[string]string) string {
		t.Helper()
		dir := t.TempDir()
		writeTree(t, dir, tree, nil)
		d, err := Digest(dir)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		if v == "" && !strings.HasSuffix(k, "/") {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	want := digest(base)
	if digest(base) != want {
		t.Fatal("Digest is not stable")
	}
	for name, tree := range map[string]map[string]string{
		"content":     with("a/f", "y"),
		"exec bit":    with("a/f", "x:x"),
		"link target": with("l", "->a"),
		"type":        with("l", "a/f"),
		"empty dir":   with("e2/", ""),
		"name":        with("l", ""),
		"absolute":    with("l", "->/a/f"),
	} {
		if digest(tree) == want {
			t.Errorf("%s: Digest did not change", name)
		}
	}
	// Digest takes symlinks as they are, even those Pack refuses.
	if got := digest(map[string]string{"l": "->/etc/passwd"}); !strings.HasPrefix(got, "sha256:") {
		t.Errorf("Digest = %q", got)
	}
}
