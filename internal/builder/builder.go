// Package builder turns a function's source tree into a runnable artifact
// tree, per language: a static binary for Go, the module and its
// node_modules for Node.js, the module and its installed requirements for
// Python. Builds run with a time limit and keep their log; the build key
// names everything that determines the output, so equal keys share one
// artifact and nothing is rebuilt.
package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/shim"
	"github.com/duct-dev/duct/internal/toolchain"
)

// Version changes whenever the builder's output for the same input does;
// it is part of every build key.
const Version = "1"

// Config configures a Builder.
type Config struct {
	Tools toolchain.Set
	// GoCache and GoModCache are shared by Go builds; empty means the
	// host's defaults (go env GOCACHE, GOMODCACHE).
	GoCache, GoModCache string
	// NpmCache is npm's download cache; empty means npm's default.
	NpmCache string
	// Timeout bounds one build; 0 means 10 minutes.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Builder builds artifacts. It is safe for concurrent use.
type Builder struct {
	cfg Config
	log *slog.Logger
}

// New returns a Builder.
func New(cfg Config) *Builder {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Builder{cfg: cfg, log: cfg.Logger}
}

// Result is a finished build.
type Result struct {
	Run duct.RunSpec
	Log string
}

// Key names the build of spec from a source tree with digest source: the
// inputs that determine the artifact, and the toolchain that makes it.
func (b *Builder) Key(spec duct.Function, source string) string {
	tool, _ := b.cfg.Tools.For(spec.Runtime)
	k := struct {
		Builder, Source, Toolchain, Shim string
		Runtime                          duct.Runtime
		Signature                        duct.Signature
		Handler, Entry                   string
		Command                          []string
	}{Version, source, tool.Version, goShimDigest(spec.Runtime), spec.Runtime, spec.Signature, spec.Handler, spec.Entry, spec.Command}
	j, _ := json.Marshal(k)
	sum := sha256.Sum256(j)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// goShimDigest names the Go shim compiled into Go artifacts, so a new
// shim rebuilds them. Node.js and Python shims are loaded at run time,
// not built in.
func goShimDigest(r duct.Runtime) string {
	if r != duct.RuntimeGo {
		return ""
	}
	files, _ := shim.GoFiles("ductfn", "Handle")
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// errTimeout is the cause of a build's context ending at Config.Timeout.
var errTimeout = errors.New("build time limit reached")

// Build builds the source tree in src into the empty directory out. It may
// change src. progress receives build output lines as they come, with the
// server's own paths (src, out) replaced by <source> and <artifact>.
//
// A build that fails because of its input returns a *duct.BuildError
// whose Reason says why in the user's terms and whose Log is the whole
// build log, ending with that reason; bad options are *duct.InvalidError.
func (b *Builder) Build(ctx context.Context, spec duct.Function, src, out string, progress func(string)) (*Result, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, b.cfg.Timeout, errTimeout)
	defer cancel()
	if progress == nil {
		progress = func(string) {}
	}
	if _, err := b.cfg.Tools.For(spec.Runtime); err != nil {
		return nil, err
	}
	lw := newLogWriter(progress, src, out)
	var (
		res *Result
		err error
	)
	switch spec.Runtime {
	case duct.RuntimeGo:
		res, err = b.buildGo(ctx, spec, src, out, lw)
	case duct.RuntimeNode:
		res, err = b.buildNode(ctx, spec, src, out, lw)
	case duct.RuntimePython:
		res, err = b.buildPython(ctx, spec, src, out, lw)
	case duct.RuntimeImage:
		res, err = b.buildCommand(spec, src, out)
	default:
		err = duct.Invalid("runtime", "%q cannot be built", spec.Runtime)
	}
	if err != nil {
		if errors.Is(context.Cause(ctx), errTimeout) {
			err = &duct.BuildError{Reason: fmt.Sprintf("the build took longer than the server's limit of %s", b.cfg.Timeout)}
		}
		var be *duct.BuildError
		if errors.As(err, &be) {
			be.Reason = lw.redact(be.Reason)
			lw.Printf("build failed: %s", be.Reason)
			be.Log = lw.String()
		}
		return nil, err
	}
	res.Log = lw.String()
	return res, nil
}

// buildCommand packages a bring-your-own-server program as it is.
func (b *Builder) buildCommand(spec duct.Function, src, out string) (*Result, error) {
	if len(spec.Command) == 0 {
		return nil, duct.Invalid("command", "runtime image needs a command: the program that serves $PORT")
	}
	if err := copyTree(src, out, nil); err != nil {
		return nil, err
	}
	return &Result{Run: duct.RunSpec{Protocol: duct.ProtocolPort, Command: spec.Command}}, nil
}

// logWriter collects build output and passes whole lines to progress,
// with the server's own directories replaced by names that mean
// something to the user: the log is shown to whoever deployed.
type logWriter struct {
	progress func(string)
	paths    *strings.Replacer

	mu   sync.Mutex // guards buf and line
	buf  bytes.Buffer
	line []byte
}

// maxLog bounds the kept build log; maxLine bounds one line of it.
const (
	maxLog  = 256 << 10
	maxLine = 4096
)

func newLogWriter(progress func(string), src, out string) *logWriter {
	var pairs []string
	for _, p := range []struct{ dir, name string }{{out, "<artifact>"}, {src, "<source>"}} {
		pairs = append(pairs, p.dir, p.name)
		if real, err := filepath.EvalSymlinks(p.dir); err == nil && real != p.dir {
			pairs = append(pairs, real, p.name)
		}
	}
	return &logWriter{progress: progress, paths: strings.NewReplacer(pairs...)}
}

// redact replaces the build's directories in s.
func (w *logWriter) redact(s string) string { return w.paths.Replace(s) }

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range p {
		if c == '\n' {
			w.emitLocked()
			continue
		}
		if len(w.line) < maxLine {
			w.line = append(w.line, c)
		}
	}
	return len(p), nil
}

// emitLocked ends the current line: it goes to the log and to progress.
func (w *logWriter) emitLocked() {
	line := w.redact(strings.TrimRight(string(w.line), "\r"))
	w.line = w.line[:0]
	if room := maxLog - w.buf.Len(); room > 0 {
		w.buf.WriteString((line + "\n")[:min(len(line)+1, room)])
	}
	w.progress(line)
}

// Printf writes a line of Duct's own to the log.
func (w *logWriter) Printf(format string, args ...any) {
	fmt.Fprintf(w, format+"\n", args...)
}

// String is the log so far, an unfinished last line included.
func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.line) == 0 {
		return w.buf.String()
	}
	return w.buf.String() + w.redact(string(w.line))
}

// run runs a build tool in dir with env, its output going to the log, and
// returns that output (its end, redacted) for the caller to explain a
// failure. A failure becomes a BuildError saying what failed, with the
// tool's last line of output.
func run(ctx context.Context, lw *logWriter, dir string, env []string, what string, argv ...string) (string, error) {
	lw.Printf("$ %s %s", filepath.Base(argv[0]), strings.Join(argv[1:], " "))
	var tail tailBuffer
	w := io.MultiWriter(lw, &tail)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	output := lw.redact(tail.String())
	if err != nil {
		if ctx.Err() != nil {
			return output, ctx.Err()
		}
		reason := what + " failed (" + err.Error() + ")"
		if last := lastLine(output); last != "" {
			reason += ": " + last
		}
		return output, &duct.BuildError{Reason: reason}
	}
	return output, nil
}

// unreachable reports whether a package manager's output says the
// network or its registry could not be reached.
func unreachable(output string) bool {
	for _, sign := range []string{
		"Name or service not known", "Temporary failure in name resolution", "Failed to establish a new connection",
		"NewConnectionError", "Network is unreachable", "Connection refused", "ConnectTimeoutError", "ENOTFOUND",
		"EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH", "no such host", "i/o timeout",
	} {
		if strings.Contains(output, sign) {
			return true
		}
	}
	return false
}

// tailBuffer keeps the last maxTail bytes written to it.
type tailBuffer struct{ b []byte }

const maxTail = 64 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*maxTail {
		t.b = append(t.b[:0], t.b[len(t.b)-maxTail:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if len(t.b) > maxTail {
		return string(t.b[len(t.b)-maxTail:])
	}
	return string(t.b)
}

// lastLine returns the last non-blank line of s, trimmed and shortened
// to a readable length.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return shorten(strings.TrimSpace(lines[len(lines)-1]))
}

func shorten(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// copyTree copies the regular files, directories and symlinks of src into
// dst, skipping paths for which skip returns true.
func copyTree(src, dst string, skip func(rel string, d os.DirEntry) bool) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == "." {
			return nil
		}
		if skip != nil && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&os.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyFile(path, target)
		}
		return nil
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if st.Mode()&0o111 != 0 {
		mode = 0o755
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// insideSource reports whether a path from the user's files (a
// dependency, a main module) stays inside the source tree: relative, and
// not climbing out of it. A leading "//" (file:///path) is absolute.
func insideSource(path string) bool {
	return path != "" && !strings.HasPrefix(path, "~") && filepath.IsLocal(path)
}

// firstExisting returns the first of names that is a regular file in dir.
func firstExisting(dir string, names ...string) string {
	for _, n := range names {
		if st, err := os.Stat(filepath.Join(dir, n)); err == nil && st.Mode().IsRegular() {
			return n
		}
	}
	return ""
}

// filesWithExt lists regular files at the top of dir with one of exts.
func filesWithExt(dir string, exts ...string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		for _, x := range exts {
			if strings.HasSuffix(e.Name(), x) {
				out = append(out, e.Name())
				break
			}
		}
	}
	return out
}

// entryFile picks the file holding the handler: the spec's, the first of
// conventional names, or the only candidate.
func entryFile(spec duct.Function, dir string, conventional []string, exts ...string) (string, error) {
	if spec.Entry != "" {
		if firstExisting(dir, spec.Entry) == "" {
			return "", duct.Invalid("entry", "%q is not a file in the source", spec.Entry)
		}
		return spec.Entry, nil
	}
	if e := firstExisting(dir, conventional...); e != "" {
		return e, nil
	}
	files := filesWithExt(dir, exts...)
	switch len(files) {
	case 1:
		return files[0], nil
	case 0:
		return "", duct.Invalid("source", "no %s file found for runtime %s", strings.Join(exts, " or "), spec.Runtime)
	}
	return "", duct.Invalid("entry", "several files could hold the handler (%s): name one with entry in duct.yaml or --entry",
		strings.Join(files, ", "))
}
