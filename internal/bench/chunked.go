package bench

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
)

// chunkedReader decodes HTTP/1.1 chunked transfer coding.
type chunkedReader struct {
	br   *bufio.Reader
	left int64
	done bool
}

func newChunkedReader(br *bufio.Reader) io.Reader { return &chunkedReader{br: br} }

func (c *chunkedReader) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		line, err := c.br.ReadString('\n')
		if err != nil {
			return 0, err
		}
		size, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(size, 16, 64)
		if err != nil || n < 0 {
			return 0, errors.New("bad chunk size")
		}
		if n == 0 {
			// Trailers end with an empty line.
			for {
				l, err := c.br.ReadString('\n')
				if err != nil {
					return 0, err
				}
				if strings.TrimSpace(l) == "" {
					break
				}
			}
			c.done = true
			return 0, io.EOF
		}
		c.left = n
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	if c.left == 0 && err == nil {
		if _, err := c.br.Discard(2); err != nil {
			return n, err
		}
	}
	return n, err
}
