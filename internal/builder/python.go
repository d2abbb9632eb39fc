package builder

import (
	"bufio"
	"context"
	"errors"
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
	if err := checkRequirements(filepath.Join(src, "requirements.txt")); err != nil {
		return nil, err
	}
	if hasRequirements(filepath.Join(src, "requirements.txt")) {
		py := b.cfg.Tools.Python.Path
		env := append(hostEnv(binDir(py)), "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1", "PYTHONDONTWRITEBYTECODE=1")
		if _, err := run(ctx, lw, out, env, "pip --version", py, "-m", "pip", "--version"); err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			return nil, &duct.BuildError{Reason: "requirements.txt lists packages but pip is not available to the server's Python (" +
				filepath.Base(py) + " -m pip)"}
		}
		output, err := run(ctx, lw, out, env, "pip install",
			// Wheels only: building a source distribution runs its
			// setup.py, code from the internet, outside any sandbox.
			py, "-m", "pip", "install", "--no-input", "--only-binary=:all:", "--retries", "1", "--timeout", "15",
			"--target", filepath.Join(out, packagesDir), "-r", "requirements.txt")
		if err != nil {
			var be *duct.BuildError
			if errors.As(err, &be) {
				be.Reason = pipReason(output)
			}
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

// pipReason explains a failed pip install from its output: pip's last
// ERROR line, and whether the package index could be reached at all.
func pipReason(output string) string {
	reason := "pip could not install the packages in requirements.txt"
	var last string
	for _, line := range strings.Split(output, "\n") {
		if msg, ok := strings.CutPrefix(strings.TrimSpace(line), "ERROR: "); ok {
			last = msg
		}
	}
	if last == "" {
		last = lastLine(output)
	}
	if last != "" {
		reason += ": " + shorten(last)
	}
	if unreachable(output) {
		reason += " (no package index is reachable from the server: give it network access or set PIP_INDEX_URL, " +
			"or put the packages in the source)"
	}
	return reason
}

// checkRequirements refuses requirements that name paths on the machine
// that builds them (/etc/..., ../.., file:///...): only an index and the
// source's own files can be installed.
func checkRequirements(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	for i, line := range strings.Split(string(raw), "\n") {
		line, _, _ = strings.Cut(line, " #")
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		var targets []string
		switch fields[0] {
		case "-e", "--editable", "-r", "--requirement", "-c", "--constraint":
			targets = fields[1:2]
		default:
			targets = fields[:1]
			if _, ref, ok := strings.Cut(line, " @ "); ok { // name @ file:///path
				targets = append(targets, strings.TrimSpace(ref))
			}
		}
		for _, t := range targets {
			p, local := t, strings.HasPrefix(t, "/") || strings.HasPrefix(t, ".") || strings.HasPrefix(t, "~")
			if rest, ok := strings.CutPrefix(t, "file:"); ok {
				p, local = rest, true
			}
			if local && !insideSource(p) {
				return duct.Invalid("requirements.txt", "line %d names %q, outside the source: only a package index and paths inside the source can be installed",
					i+1, t)
			}
		}
	}
	return nil
}
