package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
)

// Digest returns "sha256:<hex>" for the tree under dir. It covers each
// path with its type, whether a file has any execute bit, a file's content
// and a symlink's target, in path order; nothing else (times, owners, other
// mode bits, the archive the tree came from) changes it. Unlike Pack, it
// takes any symlink as it is. Devices, FIFOs and sockets are errors.
//
// The digest is the SHA-256 of "duct-tree-v1\x00" followed, for each path
// in byte order, by: a type byte ('d', 'f' or 'l'), an exec byte ('x' or
// '-'), the path, NUL, then the hex SHA-256 of a file's content or a
// symlink's target (nothing for a directory), NUL.
func Digest(dir string) (string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	defer root.Close()
	entries, err := scan(root, nil, false)
	if err != nil {
		return "", fmt.Errorf("digest %s: %w", dir, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	h := sha256.New()
	io.WriteString(h, "duct-tree-v1\x00")
	fh := sha256.New()
	for _, e := range entries {
		kind, exec, payload := byte('d'), byte('-'), ""
		switch e.kind {
		case kindSymlink:
			kind, payload = 'l', e.target
		case kindFile:
			kind = 'f'
			if e.exec {
				exec = 'x'
			}
			if payload, err = fileSum(root, e.path, fh); err != nil {
				return "", fmt.Errorf("digest %s: %w", dir, err)
			}
		}
		h.Write([]byte{kind, exec})
		io.WriteString(h, e.path+"\x00"+payload+"\x00")
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func fileSum(root *os.Root, name string, h hash.Hash) (string, error) {
	f, err := root.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h.Reset()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
