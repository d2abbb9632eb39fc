package shim

import (
	"bytes"
	"errors"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/duct-dev/duct"
)

func TestInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shims")
	p, err := Install(dir)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]byte{p.Node: nodeShim, p.Python: pythonShim} {
		if !filepath.IsAbs(path) || filepath.Dir(path) != filepath.Join(dir, Digest()) {
			t.Errorf("path %s is not absolute under %s/%s", path, dir, Digest())
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v, want 0644", path, fi.Mode().Perm())
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
			t.Errorf("%s differs from the embedded shim", path)
		}
	}
	if fi, _ := os.Stat(filepath.Dir(p.Node)); fi.Mode().Perm() != 0o755 {
		t.Errorf("shim directory mode %v, want 0755", fi.Mode().Perm())
	}

	again, err := Install(dir)
	if err != nil || again != p {
		t.Errorf("second Install = %v, %v; want %v", again, err, p)
	}

	// A damaged install is replaced.
	os.WriteFile(p.Python, []byte("broken"), 0o644)
	if _, err := Install(dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p.Python); !bytes.Equal(got, pythonShim) {
		t.Error("damaged shim not replaced")
	}

	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("install left %d entries in %s, want 1", len(entries), dir)
	}
}

func TestInstallConcurrent(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Install(dir); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("concurrent installs left %d entries, want 1", len(entries))
	}
}

func TestGoFiles(t *testing.T) {
	files, err := GoFiles("example.com/fn/sub", "Handle")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"main.go", "http.go", "event.go", "cloudevent.go", "handler.go"} {
		b, ok := files[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		if formatted, err := format.Source(b); err != nil || !bytes.Equal(formatted, b) {
			t.Errorf("%s is not gofmt-formatted (%v)", name, err)
		}
	}
	if !bytes.Contains(files["handler.go"], []byte(`import userpkg "example.com/fn/sub"`)) ||
		!bytes.Contains(files["handler.go"], []byte("= userpkg.Handle\n")) {
		t.Errorf("handler.go:\n%s", files["handler.go"])
	}
}

func TestGoFilesInvalid(t *testing.T) {
	for _, tc := range []struct{ importPath, handler string }{
		{"example.com/fn", ""},
		{"example.com/fn", "handle"},
		{"example.com/fn", "Handle()"},
		{"example.com/fn", "1Handle"},
		{"example.com/fn", "Han dle"},
		{"example.com/fn", "_Handle"},
		{"", "Handle"},
		{"./fn", "Handle"},
		{"example.com/fn\"\nimport \"os", "Handle"},
		{"example.com/f n", "Handle"},
	} {
		if _, err := GoFiles(tc.importPath, tc.handler); !errors.Is(err, duct.ErrInvalid) {
			t.Errorf("GoFiles(%q, %q) = %v, want an ErrInvalid", tc.importPath, tc.handler, err)
		}
	}
	if _, err := GoFiles("example.com/fn", "Ünïcode_2"); err != nil {
		t.Errorf("exported Unicode identifier refused: %v", err)
	}
}

// TestPythonSyntax38 checks that the Python shim parses as Python 3.8.
func TestPythonSyntax38(t *testing.T) {
	py := pythonExe(t)
	cmd := exec.Command(py, "-c", "import ast, sys; ast.parse(sys.stdin.read(), feature_version=(3, 8))")
	cmd.Stdin = bytes.NewReader(pythonShim)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shim.py is not Python 3.8: %v\n%s", err, out)
	}
}
