// Package shim embeds the language adapters ("shims") that turn a
// single-file handler into a Duct instance serving HTTP on the fast path of
// docs/instance-contract.md: a Node.js module and a Python script, which
// start generic and load a function when told to, and the Go source of a
// main package that serves one compiled-in handler.
//
// Start a Node.js instance as `node <Paths.Node>` and a Python one as
// `python3 <Paths.Python>` (the real interpreter, not a version manager's
// wrapper), with a clean environment holding DUCT_LISTEN_FD=3 and
// DUCT_CONTROL_FD=4.
package shim

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

var (
	//go:embed node/shim.mjs
	nodeShim []byte
	//go:embed python/shim.py
	pythonShim []byte
)

// File names inside an installed shim directory.
const (
	nodeFile   = "shim.mjs"
	pythonFile = "shim.py"
)

// Paths locates installed shims.
type Paths struct {
	Node   string // absolute path of the Node.js shim, an ES module
	Python string // absolute path of the Python shim
}

// Digest identifies the embedded Node.js and Python shims: it changes
// whenever either does. Install names its directory after it.
func Digest() string {
	h := sha256.New()
	h.Write(nodeShim)
	h.Write([]byte{0})
	h.Write(pythonShim)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Install writes the Node.js and Python shims under dir/<Digest()>/, readable
// by any uid, and returns their paths. It is idempotent and safe to call
// concurrently, from several processes too: a shim directory appears
// complete or not at all.
func Install(dir string) (Paths, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Paths{}, fmt.Errorf("install shims: %w", err)
	}
	target := filepath.Join(abs, Digest())
	p := Paths{Node: filepath.Join(target, nodeFile), Python: filepath.Join(target, pythonFile)}
	if installed(target) {
		return p, nil
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return Paths{}, fmt.Errorf("install shims: %w", err)
	}
	tmp, err := os.MkdirTemp(abs, ".tmp-shim-")
	if err != nil {
		return Paths{}, fmt.Errorf("install shims: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := writeFiles(tmp); err != nil {
		return Paths{}, fmt.Errorf("install shims: %w", err)
	}
	if err := os.Rename(tmp, target); err != nil {
		// Another installer may have won the race; a directory left by a
		// broken install is replaced.
		if installed(target) {
			return p, nil
		}
		if rmErr := os.RemoveAll(target); rmErr != nil {
			return Paths{}, fmt.Errorf("install shims: %w", errors.Join(err, rmErr))
		}
		if err := os.Rename(tmp, target); err != nil {
			return Paths{}, fmt.Errorf("install shims: %w", err)
		}
	}
	return p, nil
}

func writeFiles(dir string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	for name, b := range map[string][]byte{nodeFile: nodeShim, pythonFile: pythonShim} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		// WriteFile's mode is filtered by the umask.
		if err := os.Chmod(path, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// installed reports whether dir holds the embedded shims, byte for byte.
func installed(dir string) bool {
	for name, want := range map[string][]byte{nodeFile: nodeShim, pythonFile: pythonShim} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			return false
		}
	}
	return true
}
