package bundle

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"

	"github.com/duct-dev/duct"
)

// zip spools the archive to a temporary file, bounded by the input's
// limitReader, and extracts it from there.
func (x *extractor) zip(r io.Reader) error {
	tmp, err := os.CreateTemp("", "duct-bundle-*.zip")
	if err != nil {
		return fmt.Errorf("archive: spooling zip: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	size, err := io.Copy(tmp, r)
	if err != nil {
		if errors.Is(err, errLimit) {
			return err // Extract reports the limit
		}
		return fmt.Errorf("archive: spooling zip: %w", err)
	}
	zr, err := zip.NewReader(tmp, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return corrupt("zip", err)
	}
	if len(zr.File) > x.lim.MaxFiles {
		return fmt.Errorf("archive: %w: more than %d entries", duct.ErrTooLarge, x.lim.MaxFiles)
	}
	for _, f := range zr.File {
		if err := x.zipEntry(f); err != nil {
			return err
		}
	}
	return nil
}

const badTypes = fs.ModeDevice | fs.ModeCharDevice | fs.ModeNamedPipe | fs.ModeSocket | fs.ModeIrregular

func (x *extractor) zipEntry(f *zip.File) error {
	mode := f.Mode()
	switch {
	case f.Flags&0x1 != 0:
		return invalid(f.Name, "encrypted entries are not supported")
	case mode&badTypes != 0:
		return invalid(f.Name, "device, FIFO or socket entries are not allowed")
	case mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0:
		return invalid(f.Name, "setuid, setgid or sticky bit")
	}
	switch mode.Type() {
	case fs.ModeDir:
		return x.dir(f.Name)
	case fs.ModeSymlink:
		target, err := x.zipLink(f)
		if err != nil {
			return err
		}
		return x.symlink(f.Name, target)
	case 0:
		rc, err := f.Open()
		if err != nil {
			return invalid(f.Name, "%v", err)
		}
		defer rc.Close()
		size := int64(math.MaxInt64)
		if f.UncompressedSize64 < math.MaxInt64 {
			size = int64(f.UncompressedSize64)
		}
		return x.file(f.Name, mode&0o111 != 0, rc, size)
	}
	return invalid(f.Name, "unsupported entry type (mode %v)", mode)
}

// zipLink reads a symlink entry's target: its content.
func (x *extractor) zipLink(f *zip.File) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", invalid(f.Name, "%v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, int64(x.lim.MaxPath)+1))
	if err != nil {
		return "", invalid(f.Name, "reading symlink target: %v", err)
	}
	if len(b) > x.lim.MaxPath {
		return "", invalid(f.Name, "symlink target longer than %d bytes", x.lim.MaxPath)
	}
	return string(b), nil
}
