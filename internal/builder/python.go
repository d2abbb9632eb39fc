package builder

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/duct-dev/duct"
)

var pythonConventional = []string{"main.py", "handler.py", "function.py", "app.py"}

// packagesDir is where requirements are installed inside the artifact;
// the Python shim puts it on sys.path.
const packagesDir = ".packages"

func (b *Builder) buildPython(ctx context.Context, spec duct.Function, src, out string, lw *logWriter) (*Result, error) {
	entry, err := entryFile(spec, src, pythonConventional, ".py")
	if err != nil {
		return nil, err
	}
	lw.Printf("python: entry %s, handler %s (%s)", entry, spec.Handler, spec.Signature)
	skip := func(rel string, _ os.DirEntry) bool { return rel == packagesDir }
	if err := copyTree(src, out, skip); err != nil {
		return nil, err
	}
	if hasRequirements(filepath.Join(src, "requirements.txt")) {
		py := b.cfg.Tools.Python.Path
		env := append(hostEnv(binDir(py)), "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1", "PYTHONDONTWRITEBYTECODE=1")
		if err := run(ctx, lw, out, env, "pip is not available for "+py, py, "-m", "pip", "--version"); err != nil {
			return nil, &duct.BuildError{Reason: "requirements.txt lists packages but pip is not available for " + py}
		}
		err := run(ctx, lw, out, env, "pip install -r requirements.txt (is a package index reachable from the server?)",
			py, "-m", "pip", "install", "--no-input", "--retries", "1", "--timeout", "15",
			"--target", filepath.Join(out, packagesDir), "-r", "requirements.txt")
		if err != nil {
			return nil, err
		}
	}
	return &Result{Run: duct.RunSpec{Protocol: duct.ProtocolShim, Entry: entry}}, nil
}

// hasRequirements reports whether a requirements file names anything.
func hasRequirements(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			return true
		}
	}
	return false
}
