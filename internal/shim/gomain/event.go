package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"time"
)

var (
	contextType = reflect.TypeOf((*context.Context)(nil)).Elem()
	errorType   = reflect.TypeOf((*error)(nil)).Elem()
)

const signatures = "want func(http.ResponseWriter, *http.Request) for an http function, " +
	"or for an event function func(context.Context, T) (U, error), func(context.Context, T) error, " +
	"func(context.Context) (U, error) or func(context.Context) error, where T and U are JSON-encodable " +
	"or the CloudEvents SDK's event.Event"

// eventHandler calls a function of one of the event signatures, found by
// reflection: an optional context, an optional input, an optional output
// and an optional error.
type eventHandler struct {
	fn   reflect.Value
	ctx  bool         // the first parameter is a context.Context
	in   reflect.Type // the input's type, nil without one
	inCE bool         // the input is (a pointer to) a CloudEvents SDK Event
	out  bool         // a result precedes the error
	ce   bool         // the result is (a pointer to) a CloudEvents SDK Event
	err  bool         // the last result is an error
}

func newEventHandler(fn interface{}) (*eventHandler, error) {
	v := reflect.ValueOf(fn)
	t := v.Type()
	if t.Kind() != reflect.Func {
		return nil, fmt.Errorf("is a %s, not a function: %s", t, signatures)
	}
	if v.IsNil() {
		return nil, errors.New("is nil")
	}
	bad := func(why string) error {
		return fmt.Errorf("unsupported signature %s: %s; %s", t, why, signatures)
	}
	if t.IsVariadic() {
		return nil, bad("it is variadic")
	}
	h := &eventHandler{fn: v}
	i := 0
	if t.NumIn() > 0 && t.In(0) == contextType {
		h.ctx, i = true, 1
	}
	switch t.NumIn() - i {
	case 0:
	case 1:
		h.in = t.In(i)
		h.inCE = isCloudEvent(h.in)
		if err := decodable(h.in); err != "" {
			return nil, bad("the event parameter " + err)
		}
	default:
		if !h.ctx {
			return nil, bad("the first of two parameters must be a context.Context")
		}
		return nil, bad("it takes more than two parameters")
	}
	switch t.NumOut() {
	case 0:
	case 1:
		if t.Out(0) != errorType {
			return nil, bad("a single result must be an error")
		}
		h.err = true
	case 2:
		if t.Out(1) != errorType {
			return nil, bad("the second result must be an error")
		}
		h.out, h.err = true, true
		h.ce = isCloudEvent(t.Out(0))
	default:
		return nil, bad("it returns more than two results")
	}
	return h, nil
}

func decodable(t reflect.Type) string {
	for t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return "has type " + t.String() + ", which JSON cannot decode into"
	case reflect.Interface:
		if t.NumMethod() > 0 && !reflect.PtrTo(t).Implements(unmarshalerType) {
			return "has interface type " + t.String() + ", which JSON cannot decode into"
		}
	}
	return ""
}

var unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

func (h *eventHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidEvent", "reading the request body: "+err.Error())
		return
	}
	args := make([]reflect.Value, 0, 2)
	if h.ctx {
		ctx := r.Context()
		if ms, err := strconv.ParseInt(r.Header.Get("X-Duct-Deadline-Ms"), 10, 64); err == nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, time.Unix(ms/1000, ms%1000*int64(time.Millisecond)))
			defer cancel()
		}
		args = append(args, reflect.ValueOf(&ctx).Elem())
	}
	if h.in != nil {
		in, err := h.decode(r, body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidEvent", err.Error())
			return
		}
		args = append(args, in)
	}

	out, p := h.call(args)
	if p != nil {
		if p == http.ErrAbortHandler {
			panic(p)
		}
		logPanic(p)
		writeError(w, http.StatusInternalServerError, "Panic", fmt.Sprint(p))
		return
	}
	if h.err {
		if e := out[len(out)-1]; !e.IsNil() {
			err := e.Interface().(error)
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
			writeError(w, http.StatusInternalServerError, typeName(err), err.Error())
			return
		}
	}
	if !h.out || isNil(out[0]) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	b, err := json.Marshal(out[0].Interface())
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: encoding the result: %v\n", err)
		writeError(w, http.StatusInternalServerError, typeName(err), "encoding the result: "+err.Error())
		return
	}
	hdr := w.Header()
	if h.ce {
		hdr["Content-Type"] = []string{"application/cloudevents+json"}
	} else {
		hdr["Content-Type"] = []string{"application/json"}
	}
	hdr["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.Write(b)
}

func (h *eventHandler) call(args []reflect.Value) (out []reflect.Value, p interface{}) {
	defer func() {
		if v := recover(); v != nil {
			p = v
		}
	}()
	return h.fn.Call(args), nil
}

func isNil(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Ptr, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// typeName is what an error is called in an error response: its type's
// name without the package, as Lambda reports it.
func typeName(err error) string {
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	if t.Name() == "" {
		return "error"
	}
	return t.Name()
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(struct {
		Type    string `json:"errorType"`
		Message string `json:"errorMessage"`
	}{typ, msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func readBody(r *http.Request) ([]byte, error) {
	n := r.ContentLength
	if n == 0 {
		return nil, nil
	}
	if n > 0 && n <= 64<<20 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(r.Body)
}
