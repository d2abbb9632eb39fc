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
// sorting, and the response head is parsed straight into the caller's
// header map. A request body is written by a second goroutine only when
// there is one, so the instance may answer while it still streams in.
type client struct {
	addr string

	mu   sync.Mutex // guards idle and shut
	idle []*conn
	shut bool
}

type conn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	deadline time.Time // as last set, rounded
	head     head      // reused parse space
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

// deadlineGrain rounds deadlines up so that back-to-back requests on one
// connection rarely need to move it: a timeout fires up to this much late.
const deadlineGrain = 50 * time.Millisecond

func (cn *conn) setDeadline(d time.Time) {
	d = d.Truncate(deadlineGrain).Add(deadlineGrain)
	if !d.Equal(cn.deadline) {
		cn.nc.SetDeadline(d)
		cn.deadline = d
	}
}

// errDeadline marks a request that ran past its deadline.
var errDeadline = errors.New("deadline exceeded")

// Request is what the gateway sends to an instance.
type Request struct {
	Method string
	// URI is the request target: escaped path and query.
	URI    string
	Host   string
	Header http.Header
	// Body is nil when there is none; ContentLength is -1 when unknown.
	Body          io.ReadCloser
	ContentLength int64
}

// Response is an instance's answer: its headers went into the map given
// to Do.
type Response struct {
	Status        int
	ContentLength int64 // -1 when not given
	// Body must be read to its end or closed.
	Body io.ReadCloser
}

// do sends req and reads the response head, adding its end-to-end
// headers to into. The deadline bounds the whole exchange, the body
// included; ctx ending aborts it.
func (c *client) do(ctx context.Context, req *Request, deadline time.Time, into http.Header) (*Response, error) {
	cn, err := c.get()
	if err != nil {
		return nil, err
	}
	cn.setDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*Response, error) {
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
	writeHead(cn.bw, req)
	var wdone chan error
	if req.Body == nil {
		if err := cn.bw.Flush(); err != nil {
			return fail(err)
		}
	} else {
		wdone = make(chan error, 1)
		go func() { wdone <- writeBody(cn.bw, req) }()
	}
	h := &cn.head
	if err := readHead(cn.br, h); err != nil {
		if wdone != nil {
			cn.nc.Close()
			if werr := <-wdone; werr != nil && !isTimeout(werr) && !errors.Is(werr, net.ErrClosed) {
				err = werr // the body's own error (too large, client gone) explains more
			}
		}
		return fail(err)
	}
	for _, kv := range h.headers {
		into[kv.k] = append(into[kv.k], kv.v)
	}
	r, reusable := bodyReader(cn.br, h, req.Method)
	return &Response{
		Status:        h.status,
		ContentLength: h.contentLength,
		Body:          &body{r: r, c: c, cn: cn, stop: stop, wdone: wdone, reuse: reusable},
	}, nil
}

// writeHead writes the request line and headers.
func writeHead(w *bufio.Writer, req *Request) {
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.URI)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(sanitize(req.Host))
	w.WriteString("\r\n")
	for k, vv := range req.Header {
		if k == "Host" || k == "Content-Length" || k == "Transfer-Encoding" {
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
	case req.Body == nil:
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
func writeBody(w *bufio.Writer, req *Request) error {
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
	r     io.Reader
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
	n, err := b.r.Read(p)
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
