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

// Cache receives freshly built artifact trees.
type Cache interface {
	Adopt(digest, tree string) error
}

// Config wires a Service.
type Config struct {
	Store   *store.Store
	Builder *builder.Builder
	Checker Checker
	Cache   Cache
	// WorkDir holds builds in progress; it must be on the cache's file
	// system so artifacts move into the cache without a copy.
	WorkDir string
	Limits  bundle.Limits
	Logger  *slog.Logger
}

// Service deploys functions.
type Service struct {
	cfg Config
	log *slog.Logger
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
	if err != nil {
		return nil, fmt.Errorf("deploy %q: %w", name, err)
	}
	srcDigest, err := bundle.Digest(src)
	if err != nil {
		return nil, fmt.Errorf("deploy %q: digest: %w", name, err)
	}
	v := duct.Version{Function: name, Spec: spec, SourceDigest: srcDigest}
	v.BuildKey = s.cfg.Builder.Key(spec, srcDigest)
	if v.SourceArchive, err = s.storeTree(ctx, src, filepath.Join(work, "source.tar.gz")); err != nil {
		return nil, fmt.Errorf("deploy %q: store source: %w", name, err)
	}

	if rec, err := s.cfg.Store.Build(ctx, v.BuildKey); err == nil {
		v.ArtifactDigest, v.ArtifactSize, v.Run, v.BuildLog, v.Cached = rec.ArtifactDigest, rec.ArtifactSize, rec.Run, rec.Log, true
		progress(Event{Phase: "build", Message: "identical build found: nothing to rebuild"})
	} else if !errors.Is(err, duct.ErrNotFound) {
		return nil, fmt.Errorf("deploy %q: %w", name, err)
	} else if err := s.build(ctx, &v, src, work, progress); err != nil {
		return nil, fmt.Errorf("deploy %q: %w", name, err)
	}

	if cur, same := s.unchanged(ctx, &v); same {
		progress(Event{Phase: "done", Message: fmt.Sprintf("version %d already serves this source and spec", cur.Number)})
		return &Result{Version: cur, Unchanged: true}, nil
	}
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
	if raw, err := os.ReadFile(path); err == nil {
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
			return spec, err
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
	spec = spec.WithDefaults()
	return spec, spec.Validate()
}

// build builds, checks and stores the artifact of v.
func (s *Service) build(ctx context.Context, v *duct.Version, src, work string, progress func(Event)) error {
	out := filepath.Join(work, "artifact")
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	progress(Event{Phase: "build", Message: fmt.Sprintf("building %s function", v.Spec.Runtime)})
	begin := time.Now()
	res, err := s.cfg.Builder.Build(ctx, v.Spec, src, out, func(line string) { progress(Event{Phase: "log", Message: line}) })
	if err != nil {
		return err
	}
	v.Run, v.BuildLog, v.BuildDuration = res.Run, res.Log, time.Since(begin)

	progress(Event{Phase: "check", Message: "starting an instance"})
	if s.cfg.Checker != nil {
		if err := s.cfg.Checker.Check(ctx, v, out); err != nil {
			return &duct.BuildError{Reason: "the function does not start: " + err.Error(), Log: v.BuildLog}
		}
	}
	progress(Event{Phase: "store", Message: "storing artifact"})
	digest, err := s.storeTree(ctx, out, filepath.Join(work, "artifact.tar.gz"))
	if err != nil {
		return fmt.Errorf("store artifact: %w", err)
	}
	st, _ := os.Stat(filepath.Join(work, "artifact.tar.gz"))
	size := st.Size()
	v.ArtifactDigest, v.ArtifactSize = digest, size
	if err := s.cfg.Store.PutBuild(ctx, v.BuildKey, store.BuildRecord{
		ArtifactDigest: digest, ArtifactSize: size, Run: v.Run, Log: v.BuildLog,
	}); err != nil {
		return err
	}
	if s.cfg.Cache != nil {
		if err := s.cfg.Cache.Adopt(digest, out); err != nil {
			s.log.Warn("artifact cache: adopt failed; it will be fetched on first use", "digest", digest, "err", err)
		}
	}
	return nil
}

// storeTree packs dir into the file at path and stores it by digest.
func (s *Service) storeTree(ctx context.Context, dir, path string) (string, error) {
	digest, _, err := packFile(dir, path)
	if err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return digest, s.cfg.Store.PutBlob(ctx, digest, f)
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
