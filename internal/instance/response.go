package instance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
)

// Limits on what an instance may answer before the body: an instance runs
// user code, and a hostile one must not make the gateway buffer or loop.
const (
	maxResponseHeaderBytes = 64 << 10
	maxResponseHeaders     = 256
	maxInterim             = 8 // 1xx responses before the final one
)

var errBadResponse = errors.New("malformed HTTP response from the instance")

// header is one parsed response header.
type header struct{ k, v string }

// head is a parsed response head.
type head struct {
	status        int
	contentLength int64 // -1: not given
	chunked       bool
	close         bool
	headers       []header // end-to-end headers, canonical keys
}

// readHead reads the final response head, skipping interim 1xx ones.
func readHead(br *bufio.Reader, h *head) error {
	for range maxInterim {
		if err := readOneHead(br, h); err != nil {
			return err
		}
		if h.status >= 200 || h.status == http.StatusSwitchingProtocols {
			return nil
		}
	}
	return fmt.Errorf("%w: too many interim responses", errBadResponse)
}

func readOneHead(br *bufio.Reader, h *head) error {
	*h = head{contentLength: -1, headers: h.headers[:0]}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return lineErr(err)
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return fmt.Errorf("%w: bad status line %q", errBadResponse, trimLine(line))
	}
	st := line[9:12]
	if st[0] < '1' || st[0] > '5' || st[1] < '0' || st[1] > '9' || st[2] < '0' || st[2] > '9' {
		return fmt.Errorf("%w: bad status %q", errBadResponse, st)
	}
	h.status = int(st[0]-'0')*100 + int(st[1]-'0')*10 + int(st[2]-'0')
	if line[7] == '0' {
		h.close = true // HTTP/1.0 closes unless told otherwise
	}
	total := len(line)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return lineErr(err)
		}
		total += len(line)
		if total > maxResponseHeaderBytes || len(h.headers) > maxResponseHeaders {
			return fmt.Errorf("%w: headers exceed %d bytes or %d fields", errBadResponse, maxResponseHeaderBytes, maxResponseHeaders)
		}
		line = trimLine(line)
		if len(line) == 0 {
			return nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || line[0] == ' ' || line[0] == '\t' {
			return fmt.Errorf("%w: bad header line %q", errBadResponse, line)
		}
		key, val := line[:colon], bytes.TrimSpace(line[colon+1:])
		if !validKey(key) || !validValue(val) {
			return fmt.Errorf("%w: bad header %q", errBadResponse, key)
		}
		k := canonical(key)
		switch k {
		case "Content-Length":
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil || n < 0 || (h.contentLength >= 0 && n != h.contentLength) {
				return fmt.Errorf("%w: bad Content-Length %q", errBadResponse, val)
			}
			h.contentLength = n
		case "Transfer-Encoding":
			if !bytes.EqualFold(val, []byte("chunked")) {
				return fmt.Errorf("%w: unsupported Transfer-Encoding %q", errBadResponse, val)
			}
			h.chunked = true
			continue
		case "Connection":
			if hasToken(val, "close") {
				h.close = true
			} else if hasToken(val, "keep-alive") {
				h.close = false
			}
			continue
		case "Keep-Alive", "Proxy-Connection", "Upgrade", "Trailer", "Te", "Proxy-Authenticate":
			continue // hop-by-hop
		}
		h.headers = append(h.headers, header{k, string(val)})
	}
}

func lineErr(err error) error {
	if errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("%w: header line too long", errBadResponse)
	}
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func trimLine(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

func hasToken(v []byte, tok string) bool {
	for _, f := range bytes.Split(v, []byte{','}) {
		if bytes.EqualFold(bytes.TrimSpace(f), []byte(tok)) {
			return true
		}
	}
	return false
}

func validKey(k []byte) bool {
	for _, c := range k {
		if c <= ' ' || c >= 0x7f || c == ':' || c == '(' || c == ')' || c == ',' || c == '/' || c == ';' ||
			c == '<' || c == '=' || c == '>' || c == '?' || c == '@' || c == '[' || c == '\\' || c == ']' ||
			c == '{' || c == '}' || c == '"' {
			return false
		}
	}
	return true
}

func validValue(v []byte) bool {
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// commonKeys maps header names as instances usually write them to their
// canonical form without allocating.
var commonKeys = map[string]string{}

func init() {
	for _, k := range []string{"Content-Type", "Content-Length", "Date", "Connection", "Transfer-Encoding", "Keep-Alive",
		"Cache-Control", "Set-Cookie", "Location", "Etag", "Last-Modified", "Vary", "Server", "Content-Encoding",
		"X-Powered-By", "Access-Control-Allow-Origin", "Expires", "Content-Disposition", "X-Content-Type-Options"} {
		commonKeys[k] = k
		commonKeys[string(bytes.ToLower([]byte(k)))] = k
	}
}

func canonical(k []byte) string {
	if c, ok := commonKeys[string(k)]; ok {
		return c
	}
	return textproto.CanonicalMIMEHeaderKey(string(k))
}

// bodyReader frames a response body.
func bodyReader(br *bufio.Reader, h *head, method string) (r io.Reader, reusable bool) {
	switch {
	case method == http.MethodHead || h.status == http.StatusNoContent || h.status == http.StatusNotModified ||
		(h.status >= 100 && h.status < 200):
		return eofReader{}, !h.close
	case h.chunked:
		return &chunkedReader{br: br}, !h.close
	case h.contentLength >= 0:
		return &lengthReader{r: br, left: h.contentLength}, !h.close
	}
	return br, false // until the instance closes the connection
}

// lengthReader reads exactly left bytes; an early end is an error, not a
// short body passed off as whole.
type lengthReader struct {
	r    io.Reader
	left int64
}

func (l *lengthReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err == io.EOF && l.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if l.left == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// chunkedReader decodes HTTP/1.1 chunked transfer coding, ignoring
// trailers.
type chunkedReader struct {
	br   *bufio.Reader
	left int64
	done bool
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, lineErr(err)
		}
		size := trimLine(line)
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: bad chunk size", errBadResponse)
		}
		if n == 0 {
			for i := 0; ; i++ {
				l, err := c.br.ReadSlice('\n')
				if err != nil {
					return 0, lineErr(err)
				}
				if len(trimLine(l)) == 0 {
					break
				}
				if i > maxResponseHeaders {
					return 0, fmt.Errorf("%w: too many trailers", errBadResponse)
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
		crlf, err := c.br.Peek(2)
		if err != nil {
			return n, lineErr(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return n, fmt.Errorf("%w: chunk not followed by CRLF", errBadResponse)
		}
		c.br.Discard(2)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
