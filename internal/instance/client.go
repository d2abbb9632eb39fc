package instance

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// client is a minimal HTTP/1.1 client for one instance. It keeps up to one
// connection per request slot and runs a request on the caller's
// goroutine: no per-request goroutines, no request cloning, no header
// sorting. A request body is written by a second goroutine only when
// there is one, so the instance may answer while it still streams in.
type client struct {
	addr string

	mu   sync.Mutex // guards idle
	idle []*conn
	shut bool
}

type conn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func newClient(addr string) *client { return &client{addr: addr} }

func (c *client) get() (*conn, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		cn := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return cn, nil
	}
	c.mu.Unlock()
	nc, err := dial(c.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 16<<10)}, nil
}

func (c *client) put(cn *conn) {
	cn.nc.SetDeadline(time.Time{})
	c.mu.Lock()
	if !c.shut {
		c.idle = append(c.idle, cn)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	cn.nc.Close()
}

func (c *client) close() {
	c.mu.Lock()
	c.shut = true
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, cn := range idle {
		cn.nc.Close()
	}
}

// errDeadline marks a request that ran past its deadline.
var errDeadline = errors.New("deadline exceeded")

// do sends req (whose URL holds only path and query) and returns the
// response; its body must be read to the end or closed. The deadline bounds
// the whole exchange, the body included; ctx ending aborts it.
func (c *client) do(ctx context.Context, req *http.Request, deadline time.Time) (*http.Response, error) {
	cn, err := c.get()
	if err != nil {
		return nil, err
	}
	cn.nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		cn.nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if isTimeout(err) {
			return nil, errDeadline
		}
		return nil, err
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	writeHead(cn.bw, req, hasBody)
	var wdone chan error
	if !hasBody {
		if err := cn.bw.Flush(); err != nil {
			return fail(err)
		}
	} else {
		wdone = make(chan error, 1)
		go func() { wdone <- writeBody(cn.bw, req) }()
	}
	resp, err := readResponse(cn.br, req)
	if err != nil {
		if wdone != nil {
			cn.nc.Close()
			if werr := <-wdone; werr != nil && !isTimeout(werr) && !errors.Is(werr, net.ErrClosed) {
				err = werr // the body's own error (too large, client gone) explains more
			}
		}
		return fail(err)
	}
	resp.Body = &body{rc: resp.Body, c: c, cn: cn, stop: stop, wdone: wdone, reuse: !resp.Close}
	return resp, nil
}

// readResponse reads the final response, skipping interim 1xx ones.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
	}
}

// writeHead writes the request line and headers.
func writeHead(w *bufio.Writer, req *http.Request, hasBody bool) {
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(req.Host)
	w.WriteString("\r\n")
	for k, vv := range req.Header {
		if k == "Host" || k == "Content-Length" {
			continue
		}
		for _, v := range vv {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(sanitize(v))
			w.WriteString("\r\n")
		}
	}
	switch {
	case !hasBody:
		if req.Method == "POST" || req.Method == "PUT" || req.Method == "PATCH" {
			w.WriteString("Content-Length: 0\r\n")
		}
	case req.ContentLength >= 0:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(req.ContentLength, 10))
		w.WriteString("\r\n")
	default:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	w.WriteString("\r\n")
}

// sanitize drops CR and LF from a header value (net/http's server already
// refuses them; this is defence in depth against request smuggling).
func sanitize(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			b := []byte(v)
			for j := range b {
				if b[j] == '\r' || b[j] == '\n' {
					b[j] = ' '
				}
			}
			return string(b)
		}
	}
	return v
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writeBody writes the request body, chunked when its length is unknown,
// flushing as it goes so a streaming body streams.
func writeBody(w *bufio.Writer, req *http.Request) error {
	defer req.Body.Close()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	chunked := req.ContentLength < 0
	var sent int64
	for {
		n, rerr := req.Body.Read(buf)
		if n > 0 {
			sent += int64(n)
			if chunked {
				w.WriteString(strconv.FormatInt(int64(n), 16))
				w.WriteString("\r\n")
			}
			w.Write(buf[:n])
			if chunked {
				w.WriteString("\r\n")
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if chunked {
		w.WriteString("0\r\n\r\n")
	} else if sent != req.ContentLength {
		return errors.New("request body shorter than its Content-Length")
	}
	return w.Flush()
}

// body is a response body; at its end the connection goes back to the
// client if the exchange left it clean.
type body struct {
	rc    io.ReadCloser
	c     *client
	cn    *conn
	stop  func() bool
	wdone chan error
	reuse bool
	done  bool
	err   error
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.finish(err)
		if err != io.EOF {
			err = b.err
		}
	}
	return n, err
}

func (b *body) finish(err error) {
	if b.done {
		return
	}
	b.done = true
	b.err = err
	clean := err == io.EOF && b.reuse
	if b.wdone != nil {
		if !clean {
			b.cn.nc.Close() // unblock a writer stuck on the instance
		}
		if werr := <-b.wdone; werr != nil {
			clean = false
		}
	}
	ctxErr := !b.stop()
	if err != io.EOF {
		switch {
		case ctxErr:
			b.err = context.Canceled
		case isTimeout(err):
			b.err = errDeadline
		}
	}
	if clean && !ctxErr {
		b.c.put(b.cn)
		return
	}
	b.cn.nc.Close()
}

func (b *body) Close() error {
	if !b.done {
		b.finish(errors.New("body closed early"))
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
