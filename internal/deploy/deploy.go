// Package deploy turns an uploaded source bundle into a function version:
// extract it safely, merge duct.yaml with the caller's overrides, build
// (or reuse the artifact of an identical build), check the result starts,
// store source and artifact by digest, and record the version. A failure
// at any step changes nothing that serves.
package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/builder"
	"github.com/duct-dev/duct/internal/bundle"
	"github.com/duct-dev/duct/internal/manifest"
	"github.com/duct-dev/duct/internal/store"
)

// ManifestFile is the optional spec beside the source.
const ManifestFile = "duct.yaml"

// Checker starts an instance from a built artifact to prove it serves.
type Checker interface {
	Check(ctx context.Context, v *duct.Version, dir string) error
}

// Cache holds this node's artifact trees: it receives fresh builds, and
// gives back a stored artifact for the start check of a reused build.
type Cache interface {
	Adopt(digest, tree string) error
	Ensure(ctx context.Context, digest string) (string, error)
}

// Secrets says whether secrets exist. CheckSecrets fails, matching
// duct.ErrInvalid, naming every one of names that does not.
type Secrets interface {
	CheckSecrets(ctx context.Context, names []string) error
}

// Config wires a Service.
type Config struct {
	Store   *store.Store
	Builder *builder.Builder
	Checker Checker
	Cache   Cache
	// Secrets, when set, refuses a deploy whose spec references a
	// secret that does not exist.
	Secrets Secrets
	// Vet, when set, judges a spec against the server's state before
	// anything is built (cron specs, HTTP routes other functions hold);
	// its error fails the deploy as it is.
	Vet func(ctx context.Context, spec duct.Function) error
	// DefaultInvoke is the invoke mode of a spec that sets none; empty
	// means duct.InvokePublic.
	DefaultInvoke duct.InvokeMode
	// WorkDir holds builds in progress; it must be on the cache's file
	// system so artifacts move into the cache without a copy.
	WorkDir string
	Limits  bundle.Limits
	Logger  *slog.Logger
}

// Service deploys functions. It is safe for concurrent use.
type Service struct {
	cfg    Config
	log    *slog.Logger
	builds keyLocks // one build per build key at a time
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	return &Service{cfg: cfg, log: cfg.Logger}, nil
}

// Event reports deploy progress.
type Event struct {
	Phase   string `json:"phase"` // extract, build, log, check, store, done
	Message string `json:"message,omitempty"`
}

// Result is a finished deploy.
type Result struct {
	Version duct.Version `json:"version"`
	// Unchanged is set when the upload matched the serving version: no
	// new version was made.
	Unchanged bool `json:"unchanged"`
}

// Deploy builds the bundle read from archive as a new version of the
// function name. overrides is a duct.yaml-shaped document (YAML or JSON)
// whose fields win over the bundle's duct.yaml; it may be empty.
func (s *Service) Deploy(ctx context.Context, name string, archive io.Reader, overrides []byte, progress func(Event)) (*Result, error) {
	if progress == nil {
		progress = func(Event) {}
	}
	if err := duct.ValidateName(name); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(s.cfg.WorkDir, "deploy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return nil, err
	}
	progress(Event{Phase: "extract"})
	st, err := bundle.Extract(archive, src, s.cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("deploy %q: %w", name, err)
	}
	progress(Event{Phase: "extract", Message: fmt.Sprintf("%d files, %d bytes (%s)", st.Files, st.Bytes, st.Format)})

	spec, err := s.spec(name, src, overrides)
	if err == nil && s.cfg.Vet != nil {
		err = s.cfg.Vet(ctx, spec)
	}
	if err != nil {
		return nil, fmt.Errorf("deploy %q: %w", name, err)
	}
	if s.cfg.Secrets != nil && len(spec.Secrets) > 0 {
		if err := s.cfg.Secrets.CheckSecrets(ctx, spec.Secrets); err != nil {
			return nil, fmt.Errorf("deploy %q: %w", name, err)
		}
	}
	srcDigest, err := bundle.Digest(src)
	if err != nil {
		return nil, fmt.Errorf("deploy %q: digest: %w", name, err)
	}
	v := duct.Version{Function: name, Spec: spec, SourceDigest: srcDigest}
	v.BuildKey = s.cfg.Builder.Key(spec, srcDigest)
	// The builder may change the tree: pack the source first.
	srcArchive := filepath.Join(work, "source.tar.gz")
	if v.SourceArchive, _, err = packFile(src, srcArchive); err != nil {
		return nil, fmt.Errorf("deploy %q: pack source: %w", name, err)
	}

	// Deploys of identical input wait for each other: the second reuses
	// the first's artifact instead of building it again.
	unlock, err := s.builds.lock(ctx, v.BuildKey)
	if err != nil {
		return nil, fmt.Errorf("deploy %q: %w", name, err)
	}
	defer unlock()
	out, err := s.artifact(ctx, &v, src, work, progress)
	if err != nil {
		return nil, fmt.Errorf("deploy %q: %w", name, err)
	}
	if cur, same := s.unchanged(ctx, &v); same {
		progress(Event{Phase: "done", Message: fmt.Sprintf("version %d already serves this source and spec", cur.Number)})
		return &Result{Version: cur, Unchanged: true}, nil
	}
	// A new version must start before it is recorded. The spec (its
	// environment, its memory limit) takes part, so a reused artifact is
	// checked too.
	if err := s.check(ctx, &v, out, progress); err != nil {
		return nil, fmt.Errorf("deploy %q: %w", name, err)
	}
	progress(Event{Phase: "store", Message: "storing source and artifact"})
	if err := s.putBlob(ctx, v.SourceArchive, srcArchive); err != nil {
		return nil, fmt.Errorf("deploy %q: store source: %w", name, err)
	}
	if out != "" {
		if err := s.keep(ctx, &v, out, filepath.Join(work, "artifact.tar.gz")); err != nil {
			return nil, fmt.Errorf("deploy %q: store artifact: %w", name, err)
		}
	}
	unlock()

	progress(Event{Phase: "store", Message: "recording version"})
	nv, err := s.cfg.Store.AddVersion(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("deploy %q: %w", name, err)
	}
	progress(Event{Phase: "done", Message: fmt.Sprintf("version %d serves", nv.Number)})
	return &Result{Version: nv}, nil
}

// spec merges defaults, the bundle's duct.yaml and the overrides, and
// takes duct.yaml out of the tree (it is part of the version's spec, not
// of its source, so editing it alone rebuilds nothing).
func (s *Service) spec(name, src string, overrides []byte) (duct.Function, error) {
	spec := duct.Function{Name: name}
	path := filepath.Join(src, ManifestFile)
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return spec, duct.Invalid(ManifestFile, "is not a regular file")
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return spec, err
		}
		m, err := manifest.Parse(raw)
		if err != nil {
			return spec, err
		}
		spec = m.Apply(spec)
		if err := os.Remove(path); err != nil {
			return spec, err
		}
	}
	if len(overrides) > 0 {
		m, err := manifest.Parse(overrides)
		if err != nil {
			return spec, asSpecError(err)
		}
		spec = m.Apply(spec)
	}
	spec.Name = name // the URL names the function, whatever duct.yaml says
	if spec.Runtime == "" {
		r, err := builder.Detect(src)
		if err != nil {
			return spec, err
		}
		spec.Runtime = r
	}
	if spec.Invoke == "" {
		spec.Invoke = s.cfg.DefaultInvoke
	}
	spec = spec.WithDefaults()
	return spec, spec.Validate()
}

// asSpecError makes the manifest parser's errors about the overrides
// name them, not a duct.yaml the user may never have written.
func asSpecError(err error) error {
	var ie *duct.InvalidError
	if errors.As(err, &ie) && strings.HasPrefix(ie.Field, manifest.FileName) {
		return &duct.InvalidError{Field: "spec" + strings.TrimPrefix(ie.Field, manifest.FileName), Reason: ie.Reason}
	}
	return err
}

// artifact fills in v's artifact from the record of an identical earlier
// build, or builds it. It returns the tree of a new build, to check and
// keep; "" when the build was reused.
func (s *Service) artifact(ctx context.Context, v *duct.Version, src, work string, progress func(Event)) (string, error) {
	rec, err := s.cfg.Store.Build(ctx, v.BuildKey)
	if err == nil {
		v.ArtifactDigest, v.ArtifactSize, v.Run, v.BuildLog, v.Cached = rec.ArtifactDigest, rec.ArtifactSize, rec.Run, rec.Log, true
		progress(Event{Phase: "build", Message: "identical build found: nothing to rebuild"})
		return "", nil
	}
	if !errors.Is(err, duct.ErrNotFound) {
		return "", err
	}
	out := filepath.Join(work, "artifact")
	if err := os.Mkdir(out, 0o755); err != nil {
		return "", err
	}
	progress(Event{Phase: "build", Message: fmt.Sprintf("building %s function", v.Spec.Runtime)})
	begin := time.Now()
	res, err := s.cfg.Builder.Build(ctx, v.Spec, src, out, func(line string) { progress(Event{Phase: "log", Message: line}) })
	if err != nil {
		return "", err
	}
	v.Run, v.BuildLog, v.BuildDuration = res.Run, res.Log, time.Since(begin)
	// The digest names the artifact in the version, before it is stored.
	if v.ArtifactDigest, v.ArtifactSize, err = packFile(out, filepath.Join(work, "artifact.tar.gz")); err != nil {
		// Pack refuses what Extract would (a link out of the tree, a
		// device): the build tools made it from the user's input.
		reason := "the build output cannot be stored: " + strings.ReplaceAll(err.Error(), out+string(filepath.Separator), "")
		return "", &duct.BuildError{Reason: reason, Log: v.BuildLog + "build failed: " + reason + "\n"}
	}
	return out, nil
}

// check starts an instance of v to prove it serves: from the tree out of
// a new build, or from the cache for a reused one.
func (s *Service) check(ctx context.Context, v *duct.Version, out string, progress func(Event)) error {
	if s.cfg.Checker == nil {
		return nil
	}
	dir := out
	if dir == "" {
		if s.cfg.Cache == nil {
			return nil
		}
		var err error
		if dir, err = s.cfg.Cache.Ensure(ctx, v.ArtifactDigest); err != nil {
			return fmt.Errorf("fetch artifact: %w", err)
		}
	}
	progress(Event{Phase: "check", Message: "starting an instance"})
	err := s.cfg.Checker.Check(ctx, v, dir)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	reason := "the function does not start: " + strings.ReplaceAll(startFailure(err), dir+string(filepath.Separator), "")
	for _, line := range strings.Split(reason, "\n") {
		progress(Event{Phase: "log", Message: line})
	}
	log := v.BuildLog
	if log != "" && !strings.HasSuffix(log, "\n") {
		log += "\n"
	}
	return &duct.BuildError{Reason: reason, Log: log + "start check failed: " + reason + "\n"}
}

// startFailure is what a failed start check tells the user: what the
// instance said, without the launcher's "function failed to initialise:
// NAME version 0:" (the version has no number yet).
func startFailure(err error) string {
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := m.Unwrap(); len(errs) > 1 && errs[0] == duct.ErrInitFailed {
			return strings.TrimSpace(errs[len(errs)-1].Error())
		}
	}
	return strings.TrimSpace(err.Error())
}

// keep stores a new build's artifact (packed at archive), records the
// build so identical input reuses it, and hands the tree to the cache.
func (s *Service) keep(ctx context.Context, v *duct.Version, out, archive string) error {
	if err := s.putBlob(ctx, v.ArtifactDigest, archive); err != nil {
		return err
	}
	if err := s.cfg.Store.PutBuild(ctx, v.BuildKey, store.BuildRecord{
		ArtifactDigest: v.ArtifactDigest, ArtifactSize: v.ArtifactSize, Run: v.Run, Log: v.BuildLog,
	}); err != nil {
		return err
	}
	if s.cfg.Cache != nil {
		if err := s.cfg.Cache.Adopt(v.ArtifactDigest, out); err != nil {
			s.log.Warn("artifact cache: adopt failed; it will be fetched on first use", "digest", v.ArtifactDigest, "err", err)
		}
	}
	return nil
}

// putBlob stores the file at path under digest.
func (s *Service) putBlob(ctx context.Context, digest, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.cfg.Store.PutBlob(ctx, digest, f)
}

// unchanged reports whether the serving version already is v.
func (s *Service) unchanged(ctx context.Context, v *duct.Version) (duct.Version, bool) {
	_, cur, err := s.cfg.Store.ActiveVersion(ctx, v.Function)
	if err != nil || cur.ArtifactDigest != v.ArtifactDigest || cur.BuildKey != v.BuildKey {
		return cur, false
	}
	a, _ := json.Marshal(cur.Spec)
	b, _ := json.Marshal(v.Spec)
	return cur, string(a) == string(b)
}

// packFile writes dir as a deterministic tar.gz to path and returns its
// digest and size.
func packFile(dir, path string) (string, int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err := bundle.Pack(dir, cw, nil); err != nil {
		f.Close()
		return "", 0, err
	}
	if err := f.Close(); err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
