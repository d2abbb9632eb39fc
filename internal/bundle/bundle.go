// Package bundle owns function source and artifact archives: reading an
// untrusted archive (tar.gz, tar or zip) into a directory without ever
// writing outside it, writing a directory as a deterministic tar.gz, and
// digesting a tree independently of the archive it came from.
//
// Extract trusts nothing in the archive: names, link targets, modes, sizes
// and counts are all checked, and the limits bound what it reads, writes
// and creates. Pack and Digest read trees the caller chose; they still
// never follow a symbolic link out of the directory.
package bundle

import (
	"fmt"

	"github.com/duct-dev/duct"
)

// Defaults for the zero fields of Limits.
const (
	DefaultMaxArchive   = 64 << 20  // bytes of archive read
	DefaultMaxExtracted = 512 << 20 // bytes of file content written
	DefaultMaxFiles     = 20000     // entries, directories implied by paths included
	DefaultMaxPath      = 1024      // bytes in one entry name or link target
)

// Limits bound what Extract reads and creates. A zero (or negative) field
// takes its default.
type Limits struct {
	// MaxArchive bounds the archive's own bytes, as read from the reader.
	MaxArchive int64
	// MaxExtracted bounds the file content written, counted as it is
	// written rather than trusted from headers: a compression bomb stops
	// at the limit.
	MaxExtracted int64
	// MaxFiles bounds the entries created: files, directories (those a
	// path implies included), and links.
	MaxFiles int
	// MaxPath bounds the length in bytes of an entry's name and of a link
	// target.
	MaxPath int
}

func (l Limits) withDefaults() Limits {
	if l.MaxArchive <= 0 {
		l.MaxArchive = DefaultMaxArchive
	}
	if l.MaxExtracted <= 0 {
		l.MaxExtracted = DefaultMaxExtracted
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxPath <= 0 {
		l.MaxPath = DefaultMaxPath
	}
	return l
}

// Stats describes a successful extraction.
type Stats struct {
	Format       string // "tar.gz", "tar" or "zip"
	Files        int    // regular files written, hard links included
	Dirs         int    // directories created, implied ones included
	Symlinks     int
	Bytes        int64 // file content written
	ArchiveBytes int64 // archive bytes read
}

// invalid reports a bad archive entry. Hostile names can be long: the
// message keeps their start.
func invalid(name, format string, args ...any) error {
	if len(name) > 200 {
		name = name[:200] + "..."
	}
	return duct.Invalid("archive", "entry %q: %s", name, fmt.Sprintf(format, args...))
}

// corrupt reports an archive the format readers could not read.
func corrupt(format string, err error) error {
	return duct.Invalid("archive", "truncated or corrupt %s: %v", format, err)
}
