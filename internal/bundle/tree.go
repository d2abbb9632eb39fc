package bundle

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxComponent is the longest name Linux file systems accept for one path
// component.
const maxComponent = 255

// cleanName checks an entry name from an archive and returns it in
// canonical form: slash-separated, relative, without "." or empty
// components, without a trailing slash. dir reports whether the raw name
// ended in a slash. The root itself ("." or "./") comes back as "".
// The reason, when the name is refused, is for the user.
func cleanName(raw string, maxPath int) (name string, dir bool, reason string) {
	switch {
	case raw == "":
		return "", false, "empty name"
	case len(raw) > maxPath:
		return "", false, "name longer than " + strconv.Itoa(maxPath) + " bytes"
	case strings.HasPrefix(raw, "/"):
		return "", false, "absolute path"
	}
	if r := badChars(raw); r != "" {
		return "", false, r
	}
	dir = strings.HasSuffix(raw, "/")
	parts := make([]string, 0, strings.Count(raw, "/")+1)
	for c := range strings.SplitSeq(raw, "/") {
		switch {
		case c == "" || c == ".":
			continue
		case c == "..":
			return "", false, `".." component`
		case len(c) > maxComponent:
			return "", false, "path component longer than 255 bytes"
		}
		parts = append(parts, c)
	}
	return strings.Join(parts, "/"), dir, ""
}

// checkTarget checks a symbolic link's target as written.
func checkTarget(target string, maxPath int) string {
	switch {
	case target == "":
		return "empty symlink target"
	case len(target) > maxPath:
		return "symlink target longer than " + strconv.Itoa(maxPath) + " bytes"
	case strings.HasPrefix(target, "/"):
		return "absolute symlink target " + strconv.Quote(target)
	}
	if r := badChars(target); r != "" {
		return "symlink target: " + r
	}
	return ""
}

// badChars refuses NUL, other control characters (they hide in terminals
// and logs), backslashes (a separator to some tools that may handle the
// tree later) and invalid UTF-8 (names are text: io/fs, and so Pack and
// Digest, cannot even open such a path).
func badChars(s string) string {
	if !utf8.ValidString(s) {
		return "path is not valid UTF-8"
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0:
			return "NUL byte in path"
		case c < 0x20 || c == 0x7f:
			return "control character in path"
		case c == '\\':
			return "backslash in path"
		}
	}
	return ""
}

type kind uint8

const (
	kindDir kind = iota + 1
	kindFile
	kindSymlink
)

// node is one path of a tree model. Extract records in the model
// everything it creates, and asks the model, never the disk, whether a path
// may be written: a path is written only below directories the extraction
// itself made.
type node struct {
	kind     kind
	path     string           // from the root, slash-separated
	parent   *node            // nil for the root
	children map[string]*node // directories only
	exec     bool             // files: any execute bit
	explicit bool             // directories: named by an entry, not only implied
	target   string           // symlinks

	// Symlink resolution, memoised: state is unresolved, resolving (a
	// loop when met again) or resolved to `to`.
	state uint8
	to    pos
}

const (
	unresolved uint8 = iota
	resolving
	resolved
)

// pos is a place a path resolves to: the directory n, then extra
// components that do not exist (or cross a file) below it.
type pos struct {
	n     *node
	extra int
}

// tree is a model of a directory tree being built.
type tree struct {
	root  *node
	links []*node // symlinks, in the order added
}

func newTree() *tree {
	return &tree{root: &node{kind: kindDir, explicit: true, children: map[string]*node{}}}
}

// parentError explains why parent refused a path.
type parentError struct {
	prefix string
	link   bool // the prefix is a symlink rather than a file
}

func (e *parentError) Error() string {
	if e.link {
		return "would be written through symlink " + strconv.Quote(e.prefix)
	}
	return strconv.Quote(e.prefix) + " is not a directory"
}

// parent returns the directory that holds name and name's last component.
// Missing directories on the way are implied: mkdir creates each (on disk,
// say) before the model records it. A symlink or file on the way is an
// error: nothing is ever written through a link.
func (t *tree) parent(name string, mkdir func(path string) error) (*node, string, error) {
	dir := t.root
	rest := name
	for {
		c, after, more := strings.Cut(rest, "/")
		if !more {
			return dir, c, nil
		}
		next := dir.children[c]
		if next == nil {
			p := name[:len(name)-len(after)-1]
			if err := mkdir(p); err != nil {
				return nil, "", err
			}
			next = t.add(dir, c, kindDir)
		}
		switch next.kind {
		case kindSymlink:
			return nil, "", &parentError{prefix: next.path, link: true}
		case kindFile:
			return nil, "", &parentError{prefix: next.path}
		}
		dir, rest = next, after
	}
}

// add records a new node named base in dir.
func (t *tree) add(dir *node, base string, k kind) *node {
	p := base
	if dir != t.root {
		p = dir.path + "/" + base
	}
	n := &node{kind: k, path: p, parent: dir}
	if k == kindDir {
		n.children = map[string]*node{}
	}
	if k == kindSymlink {
		t.links = append(t.links, n)
	}
	dir.children[base] = n
	return n
}

// lookup finds the node at name without following symlinks, or nil.
func (t *tree) lookup(name string) *node {
	n := t.root
	for c := range strings.SplitSeq(name, "/") {
		if n.kind != kindDir {
			return nil
		}
		if n = n.children[c]; n == nil {
			return nil
		}
	}
	return n
}

var (
	errEscape = errors.New("resolves outside the tree")
	errLoop   = errors.New("is part of a symlink loop")
)

// checkLinks resolves every symlink against the finished model and
// returns the first one that leads outside the root or into a loop.
// Resolution is memoised, so a tree of n links costs O(total target
// length) whatever their shape.
func (t *tree) checkLinks() (*node, error) {
	for _, l := range t.links {
		if _, err := t.resolve(l); err != nil {
			return l, err
		}
	}
	return nil, nil
}

func (t *tree) resolve(l *node) (pos, error) {
	switch l.state {
	case resolved:
		return l.to, nil
	case resolving:
		return pos{}, errLoop
	}
	l.state = resolving
	p, err := t.walk(pos{n: l.parent}, l.target)
	if err != nil {
		return pos{}, err
	}
	l.state, l.to = resolved, p
	return p, nil
}

// walk follows target from p the way the kernel would, component by
// component, following links. Components that do not exist are followed
// lexically: that is never more permissive than the kernel, which would
// stop there.
func (t *tree) walk(p pos, target string) (pos, error) {
	for c := range strings.SplitSeq(target, "/") {
		switch {
		case c == "" || c == ".":
			continue
		case c == "..":
			switch {
			case p.extra > 0:
				p.extra--
			case p.n.parent == nil:
				return pos{}, errEscape
			default:
				p.n = p.n.parent
			}
			continue
		case p.extra > 0:
			p.extra++
			continue
		}
		next := p.n.children[c]
		switch {
		case next == nil || next.kind == kindFile:
			p.extra++
		case next.kind == kindDir:
			p.n = next
		default:
			to, err := t.resolve(next)
			if err != nil {
				return pos{}, err
			}
			p = to
		}
	}
	return p, nil
}
