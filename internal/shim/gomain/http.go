package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"runtime/debug"
)

// newHandler adapts the user's function to an http.Handler: an http
// signature as it is, anything else as an event handler.
func newHandler(fn interface{}) (http.Handler, error) {
	switch f := fn.(type) {
	case func(http.ResponseWriter, *http.Request):
		if f == nil {
			return nil, errors.New("is nil")
		}
		return httpHandler{http.HandlerFunc(f)}, nil
	case http.HandlerFunc:
		if f == nil {
			return nil, errors.New("is nil")
		}
		return httpHandler{f}, nil
	case http.Handler:
		if v := reflect.ValueOf(f); v.Kind() == reflect.Ptr && v.IsNil() {
			return nil, errors.New("is nil")
		}
		return httpHandler{f}, nil
	case nil:
		return nil, errors.New("is nil")
	}
	return newEventHandler(fn)
}

// httpHandler runs an http handler and turns its panics into 500s.
type httpHandler struct{ h http.Handler }

func (s httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &responseWriter{ResponseWriter: w}
	defer recoverHTTP(rw)
	s.h.ServeHTTP(rw, r)
}

func recoverHTTP(rw *responseWriter) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	logPanic(p)
	if rw.wrote {
		// Half a response must not look like a whole one.
		panic(http.ErrAbortHandler)
	}
	h := rw.ResponseWriter.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", "21")
	rw.ResponseWriter.WriteHeader(http.StatusInternalServerError)
	io.WriteString(rw.ResponseWriter, "Internal Server Error")
}

func logPanic(p interface{}) {
	fmt.Fprintf(os.Stderr, "panic: %v\n\n%s", p, debug.Stack())
}

// responseWriter remembers whether the response has started, so that a
// panic can still be answered with a 500. It keeps the optional interfaces
// of net/http's own writer.
type responseWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *responseWriter) WriteHeader(code int) {
	if code >= 200 {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *responseWriter) WriteString(s string) (int, error) {
	w.wrote = true
	return io.WriteString(w.ResponseWriter, s)
}

func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	w.wrote = true
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

func (w *responseWriter) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		w.wrote = true
		return h.Hijack()
	}
	return nil, nil, errors.New("duct: connection cannot be hijacked")
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type writerOnly struct{ io.Writer }
