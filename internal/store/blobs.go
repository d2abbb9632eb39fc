package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/duct-dev/duct"
	"github.com/nats-io/nats.go/jetstream"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// blobName maps "sha256:<hex>" to an object name.
func blobName(digest string) (string, error) {
	hex, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", fmt.Errorf("blob digest %q: %w", digest, duct.ErrInvalid)
	}
	return "sha256-" + hex, nil
}

// HasBlob reports whether the blob with this digest is stored.
func (s *Store) HasBlob(ctx context.Context, digest string) (bool, error) {
	name, err := blobName(digest)
	if err != nil {
		return false, err
	}
	_, err = s.blobs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	return err == nil, err
}

// PutBlob stores r under digest unless a blob with that digest exists. The
// caller vouches that digest is r's SHA-256.
func (s *Store) PutBlob(ctx context.Context, digest string, r io.Reader) error {
	name, err := blobName(digest)
	if err != nil {
		return err
	}
	if ok, err := s.HasBlob(ctx, digest); err != nil || ok {
		return err
	}
	if _, err := s.blobs.Put(ctx, jetstream.ObjectMeta{Name: name}, r); err != nil {
		return fmt.Errorf("store blob %s: %w", digest, err)
	}
	return nil
}

// OpenBlob returns a reader over a stored blob; the caller closes it.
func (s *Store) OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	name, err := blobName(digest)
	if err != nil {
		return nil, err
	}
	r, err := s.blobs.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("blob %s: %w", digest, duct.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", digest, err)
	}
	return r, nil
}

// BuildRecord remembers which artifact a build key produced.
type BuildRecord struct {
	ArtifactDigest string       `json:"artifactDigest"`
	Run            duct.RunSpec `json:"run"`
	ArtifactSize   int64        `json:"artifactSize"`
	Log            string       `json:"log,omitempty"`
}

// Build returns the record for a build key ("sha256:<hex>").
func (s *Store) Build(ctx context.Context, key string) (BuildRecord, error) {
	k, err := buildKey(key)
	if err != nil {
		return BuildRecord{}, err
	}
	r, _, err := getJSON[BuildRecord](ctx, s.builds, k)
	return r, err
}

// PutBuild records a successful build.
func (s *Store) PutBuild(ctx context.Context, key string, r BuildRecord) error {
	k, err := buildKey(key)
	if err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = s.builds.Put(ctx, k, b)
	return err
}

func buildKey(key string) (string, error) {
	name, err := blobName(key)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(name, "sha256-"), nil
}
