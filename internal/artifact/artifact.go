// Package artifact keeps this node's cache of extracted artifacts: one
// read-only directory per artifact digest, fetched from the store on first
// use, so instances start from local files and a restarted node serves
// without re-uploads or rebuilds.
package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/duct-dev/duct/internal/bundle"
)

// Blobs is where artifacts are stored durably.
type Blobs interface {
	OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error)
}

// Cache is a directory of extracted artifacts.
type Cache struct {
	root  string
	blobs Blobs

	mu    sync.Mutex // guards fetch
	fetch map[string]*sync.Mutex
}

// New returns a cache rooted at root, fetching from blobs.
func New(root string, blobs Blobs) (*Cache, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("artifact cache: %w", err)
	}
	// Leftovers of fetches interrupted by a crash.
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
	return &Cache{root: root, blobs: blobs, fetch: map[string]*sync.Mutex{}}, nil
}

// Dir is where the artifact with digest lives once present.
func (c *Cache) Dir(digest string) string {
	return filepath.Join(c.root, strings.ReplaceAll(digest, ":", "-"))
}

// Ensure returns the directory of an artifact, fetching and extracting it
// first if this node does not have it.
func (c *Cache) Ensure(ctx context.Context, digest string) (string, error) {
	dir := c.Dir(digest)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	lock := c.lock(digest)
	lock.Lock()
	defer lock.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	r, err := c.blobs.OpenBlob(ctx, digest)
	if err != nil {
		return "", fmt.Errorf("fetch artifact %s: %w", digest, err)
	}
	defer r.Close()
	tmp, err := os.MkdirTemp(c.root, ".tmp-")
	if err != nil {
		return "", err
	}
	// Artifacts were packed by Duct, but the store is shared with other
	// nodes: extract with the same care as an upload.
	if _, err := bundle.Extract(r, tmp, bundle.Limits{MaxArchive: 4 << 30, MaxExtracted: 8 << 30, MaxFiles: 1 << 20}); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("extract artifact %s: %w", digest, err)
	}
	return dir, c.place(tmp, dir)
}

// Adopt moves a freshly built artifact tree into the cache under digest.
func (c *Cache) Adopt(digest, tree string) error {
	lock := c.lock(digest)
	lock.Lock()
	defer lock.Unlock()
	dir := c.Dir(digest)
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	return c.place(tree, dir)
}

func (c *Cache) place(tmp, dir string) error {
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return err
	}
	return nil
}

func (c *Cache) lock(digest string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.fetch[digest]
	if l == nil {
		l = new(sync.Mutex)
		c.fetch[digest] = l
	}
	return l
}
