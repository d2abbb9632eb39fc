package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/duct-dev/duct"
)

// tarOverhead is the tar stream allowed beyond file content, per entry:
// a header block, padding and, for long names, PAX records.
const tarOverhead = 4 << 10

// maxTrailer bounds the zero padding read after a tar's end marker.
const maxTrailer = 1 << 20

func (x *extractor) tarGz(r io.Reader) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return corrupt("gzip", err)
	}
	defer zr.Close()
	// The decompressed stream is bounded too, so that data Extract skips
	// (padding, bodies of header-only entries) cannot be a bomb.
	limit := x.lim.MaxExtracted + int64(x.lim.MaxFiles)*tarOverhead + maxTrailer
	in := &limitReader{r: zr, limit: limit}
	err = x.tar(in, "tar.gz")
	if in.exceeded {
		return fmt.Errorf("archive: %w: uncompressed archive exceeds %d bytes", duct.ErrTooLarge, limit)
	}
	return err
}

// tar extracts a tar stream, then checks that only zero padding follows
// its end marker, which also makes gzip verify its checksum.
func (x *extractor) tar(r io.Reader, format string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			// Insecure names get Extract's own, clearer, refusal.
			return corrupt(format, err)
		}
		if err := x.tarEntry(tr, hdr); err != nil {
			return err
		}
	}
	return trailer(r, format)
}

func (x *extractor) tarEntry(tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Mode&0o7000 != 0 {
		return invalid(hdr.Name, "setuid, setgid or sticky bit (mode %#o)", hdr.Mode&0o7777)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont:
		return x.file(hdr.Name, hdr.Mode&0o111 != 0, tr, hdr.Size)
	case tar.TypeDir:
		return x.dir(hdr.Name)
	case tar.TypeSymlink:
		return x.symlink(hdr.Name, hdr.Linkname)
	case tar.TypeLink:
		return x.hardlink(hdr.Name, hdr.Linkname)
	case tar.TypeXGlobalHeader:
		return x.count() // metadata only, but still charged
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return invalid(hdr.Name, "device or FIFO entries are not allowed")
	case tar.TypeGNUSparse:
		return invalid(hdr.Name, "sparse files are not supported")
	}
	return invalid(hdr.Name, "unsupported entry type %q", hdr.Typeflag)
}

// trailer reads what follows a tar's end marker: zero padding, at most
// maxTrailer bytes of it.
func trailer(r io.Reader, format string) error {
	buf := make([]byte, 32<<10)
	var total int64
	for {
		k, err := r.Read(buf)
		total += int64(k)
		if !allZero(buf[:k]) {
			return duct.Invalid("archive", "data after the end of the %s archive", format)
		}
		if total > maxTrailer {
			return duct.Invalid("archive", "more than %d bytes of padding after the end of the %s archive", maxTrailer, format)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return corrupt(format, err)
		}
	}
}

func allZero(b []byte) bool {
	return len(bytes.Trim(b, "\x00")) == 0
}
