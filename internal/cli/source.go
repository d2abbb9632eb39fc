package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/bundle"
	"github.com/duct-dev/duct/internal/manifest"
)

// source is a function's source on disk: a directory, or one file.
type source struct {
	path     string             // as the user gave it
	dir      string             // the directory packed
	file     string             // for a single file: its name in dir
	manifest *manifest.Manifest // dir's duct.yaml; nil for none or a single file
	// exclude lists subdirectories (slash-separated, relative to dir)
	// left out of the bundle: in dev, folders deployed as functions of
	// their own.
	exclude map[string]bool
}

// loadSource reads what deploying path needs: the kind of path and its
// duct.yaml, if any.
func loadSource(path string) (*source, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file or directory", path)
		}
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	s := &source{path: path, dir: abs}
	if !st.IsDir() {
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: not a regular file or a directory", path)
		}
		s.dir, s.file = filepath.Dir(abs), filepath.Base(abs)
		return s, nil
	}
	raw, err := os.ReadFile(filepath.Join(abs, manifest.FileName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		m, err := manifest.Parse(raw)
		if err != nil {
			// Its errors cite "duct.yaml:LINE: field": say which one.
			var ie *duct.InvalidError
			if errors.As(err, &ie) && strings.HasPrefix(ie.Field, manifest.FileName) {
				return nil, &duct.InvalidError{Field: filepath.Join(path, ie.Field), Reason: ie.Reason}
			}
			return nil, fmt.Errorf("%s: %w", filepath.Join(path, manifest.FileName), err)
		}
		s.manifest = m
	}
	return s, nil
}

// name is the function's name: the override if given, else duct.yaml's,
// else the folder's or file's name made into a valid one.
func (s *source) name(override string) (string, error) {
	n, from := override, "--name"
	if n == "" && s.manifest != nil && s.manifest.Name != nil {
		n, from = *s.manifest.Name, manifest.FileName
	}
	if n == "" {
		base := filepath.Base(s.dir)
		if s.file != "" {
			base = strings.TrimSuffix(s.file, filepath.Ext(s.file))
		}
		n, from = nameFrom(base), fmt.Sprintf("the name of %s", s.path)
		if n == "" {
			return "", fmt.Errorf("cannot make a function name from %q: give one with --name", base)
		}
	}
	if err := duct.ValidateName(n); err != nil {
		reason := err.Error()
		var ie *duct.InvalidError
		if errors.As(err, &ie) {
			reason = strings.TrimPrefix(ie.Reason, strconv.Quote(n)+": ")
		}
		if from == "--name" {
			return "", usageErrorf("invalid function name %q: %s", n, reason)
		}
		return "", fmt.Errorf("invalid function name %q (from %s): %s; give one with --name", n, from, reason)
	}
	return n, nil
}

// nameFrom turns a file or folder name into a function name: lowercase,
// runs of other characters as one '-', no '-' at either end.
func nameFrom(base string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(base) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	n := b.String()
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-")
	}
	return n
}

// skip says which paths stay out of the bundle.
func (s *source) skip(rel string, d fs.DirEntry) bool {
	if s.file != "" {
		return rel != s.file
	}
	return s.exclude[rel] || bundle.DefaultSkip(rel, d)
}

// pack writes the bundle as a tar.gz.
func (s *source) pack() ([]byte, error) {
	var buf bytes.Buffer
	if err := bundle.Pack(s.dir, &buf, s.skip); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// specDoc is the duct.yaml-shaped document of the settings given on the
// command line, sent beside the source; only set fields are written.
type specDoc struct {
	Runtime      string            `json:"runtime,omitempty"`
	Signature    string            `json:"signature,omitempty"`
	Handler      string            `json:"handler,omitempty"`
	Entry        string            `json:"entry,omitempty"`
	Timeout      string            `json:"timeout,omitempty"`
	Memory       string            `json:"memory,omitempty"`
	Concurrency  *int              `json:"concurrency,omitempty"`
	MinInstances *int              `json:"minInstances,omitempty"`
	MaxInstances *int              `json:"maxInstances,omitempty"`
	IdleTimeout  string            `json:"idleTimeout,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	Invoke       string            `json:"invoke,omitempty"`
}

// empty reports whether the document sets nothing.
func (d *specDoc) empty() bool {
	b, _ := json.Marshal(d)
	return string(b) == "{}"
}

// encode returns the document, or nil when it sets nothing.
func (d *specDoc) encode() []byte {
	if d.empty() {
		return nil
	}
	b, _ := json.Marshal(d)
	return b
}

// addEnv lays the --env settings over duct.yaml's environment: in a
// spec document env replaces the whole map, and a flag should add to it.
func (d *specDoc) addEnv(s *source, settings []string, getenv func(string) string) error {
	if len(settings) == 0 {
		return nil
	}
	env := map[string]string{}
	if s.manifest != nil {
		maps.Copy(env, s.manifest.Env)
	}
	for _, kv := range settings {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" {
			return usageErrorf("--env %q: want KEY=VALUE, or KEY to pass on the local value", kv)
		}
		if !ok {
			v = getenv(k)
		}
		env[k] = v
	}
	d.Env = env
	return nil
}
