package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/duct-dev/duct"
)

// Extract reads an archive from r into dst, which must be an existing,
// empty directory, and reports what it wrote. The format comes from the
// archive's first bytes: gzip (a tar.gz), a POSIX or GNU tar, or a zip
// (spooled to a temporary file, since zip needs random access).
//
// Errors about the archive match duct.ErrInvalid (a bad or corrupt entry,
// an unknown format) or duct.ErrTooLarge (a limit in lim). Extract refuses
// the whole archive on the first bad entry: absolute names and ".."
// components, NUL, control characters or backslashes in names, duplicate
// entries, entries below a symlink, symlinks that are absolute or resolve
// outside dst or into a loop, hard links to anything but a regular file
// extracted earlier, devices, FIFOs, sockets and sparse files, setuid,
// setgid and sticky bits. Hard links are written as copies. Directories are
// made 0755 and files 0644, or 0755 if the archive gave them any execute
// bit; owners and times are not kept.
//
// Nothing is ever written outside dst, and nothing inside it is written
// through a symlink: symlinks are created last, once the whole tree is
// known and each has been resolved against it.
//
// On error Extract removes what it created, best effort, so that dst is
// not mistaken for a complete tree; the caller should still remove dst.
func Extract(r io.Reader, dst string, lim Limits) (Stats, error) {
	lim = lim.withDefaults()
	root, err := os.OpenRoot(dst)
	if err != nil {
		return Stats{}, fmt.Errorf("archive: %w", err)
	}
	defer root.Close()
	if err := checkEmpty(root); err != nil {
		return Stats{}, fmt.Errorf("archive: destination %s: %w", dst, err)
	}

	in := &limitReader{r: r, limit: lim.MaxArchive}
	x := &extractor{root: root, lim: lim, tree: newTree()}
	err = x.read(in)
	if err == nil {
		err = x.finish()
	}
	x.stats.ArchiveBytes = in.n
	if err != nil {
		switch {
		case in.exceeded:
			err = fmt.Errorf("archive: %w: archive exceeds %d bytes", duct.ErrTooLarge, lim.MaxArchive)
		case in.err != nil:
			// The reader failed, not the archive.
			err = fmt.Errorf("archive: reading: %w", in.err)
		}
		emptyDir(root)
		return Stats{}, err
	}
	return x.stats, nil
}

// read detects the format and extracts every entry.
func (x *extractor) read(in io.Reader) error {
	br := bufio.NewReaderSize(in, 64<<10)
	head, err := br.Peek(512)
	if err != nil && err != io.EOF {
		return err // Extract tells which
	}
	switch {
	case len(head) == 0:
		return duct.Invalid("archive", "empty input: want a tar.gz, tar or zip archive")
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		x.stats.Format = "tar.gz"
		return x.tarGz(br)
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		x.stats.Format = "zip"
		return x.zip(br)
	case isTar(head):
		x.stats.Format = "tar"
		return x.tar(br, "tar")
	}
	return duct.Invalid("archive", "unknown format: want a tar.gz, tar or zip archive")
}

// isTar recognises a POSIX or GNU tar header, or the zero block that
// starts an empty archive. Pre-POSIX (V7) archives have no magic and are
// not recognised.
func isTar(head []byte) bool {
	if len(head) < 512 {
		return false
	}
	if bytes.Equal(head[257:262], []byte("ustar")) {
		return true
	}
	return bytes.Count(head[:512], []byte{0}) == 512
}

func checkEmpty(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if err != nil && err != io.EOF {
		return err
	}
	if len(names) > 0 {
		return errors.New("not empty")
	}
	return nil
}

// emptyDir removes everything in root, which Extract found empty.
func emptyDir(root *os.Root) {
	d, err := root.Open(".")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		root.RemoveAll(n)
	}
}

// limitReader fails once more than limit bytes have been read, and
// remembers it, and the first error of its reader: format readers may
// wrap or replace errors.
type limitReader struct {
	r        io.Reader
	n, limit int64
	exceeded bool
	err      error
}

var errLimit = errors.New("size limit exceeded")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.exceeded {
		return 0, errLimit
	}
	if room := l.limit - l.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	k, err := l.r.Read(p)
	l.n += int64(k)
	if err != nil && err != io.EOF && l.err == nil {
		l.err = err
	}
	if l.n > l.limit {
		l.exceeded = true
		return k, errLimit
	}
	return k, err
}

// errReader remembers the first error other than io.EOF its reader
// returned, telling a corrupt archive from a failed write.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	k, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return k, err
}
