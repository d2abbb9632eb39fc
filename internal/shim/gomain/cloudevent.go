package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"
)

// isCloudEvent reports whether t is, or points to, the CloudEvents SDK's
// event.Event. The SDK is recognised by name so that the shim needs no
// dependency on it: its Event decodes itself from structured-mode JSON.
func isCloudEvent(t reflect.Type) bool {
	for t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	return t.Name() == "Event" && strings.HasSuffix(t.PkgPath(), "cloudevents/sdk-go/v2/event")
}

// decode builds the handler's input from the request: the CloudEvent
// itself for an SDK Event, otherwise the CloudEvent's data, or the body
// when the request is not a CloudEvent.
func (h *eventHandler) decode(r *http.Request, body []byte) (reflect.Value, error) {
	t := h.in
	ptr := t.Kind() == reflect.Ptr
	if ptr {
		t = t.Elem()
	}
	v := reflect.New(t)
	var err error
	if h.inCE {
		var doc []byte
		doc, err = structured(r, body)
		if err == nil {
			err = json.Unmarshal(doc, v.Interface())
		}
	} else {
		var data []byte
		data, err = eventData(r, body)
		if err == nil {
			err = decodeData(v, data)
		}
	}
	if err != nil {
		return reflect.Value{}, err
	}
	if ptr {
		return v, nil
	}
	return v.Elem(), nil
}

func isBinary(r *http.Request) bool { return r.Header.Get("Ce-Specversion") != "" }

func isStructured(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return len(ct) >= 28 && strings.EqualFold(ct[:28], "application/cloudevents+json")
}

// eventData returns the data of a CloudEvent, or the body of any other
// request.
func eventData(r *http.Request, body []byte) ([]byte, error) {
	if !isStructured(r) || isBinary(r) {
		return body, nil
	}
	var env struct {
		Data       json.RawMessage `json:"data"`
		DataBase64 *string         `json:"data_base64"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, errors.New("structured CloudEvent: " + err.Error())
	}
	if env.DataBase64 != nil {
		b, err := base64.StdEncoding.DecodeString(*env.DataBase64)
		if err != nil {
			return nil, errors.New("structured CloudEvent: data_base64: " + err.Error())
		}
		return b, nil
	}
	return env.Data, nil
}

// decodeData stores data in the value v points to: JSON decoded, except
// that a string takes text and a byte slice takes the bytes as they are.
func decodeData(v reflect.Value, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	e := v.Elem()
	if v.Type().Implements(unmarshalerType) {
		return json.Unmarshal(data, v.Interface())
	}
	switch {
	case e.Kind() == reflect.Slice && e.Type().Elem().Kind() == reflect.Uint8:
		e.SetBytes(data)
		return nil
	case e.Kind() == reflect.String && !(data[0] == '"' && json.Valid(data)):
		e.SetString(string(data))
		return nil
	case e.Kind() == reflect.Interface && !json.Valid(data):
		e.Set(reflect.ValueOf(string(data)))
		return nil
	}
	return json.Unmarshal(data, v.Interface())
}

// structured returns the request as a structured-mode CloudEvent: the body
// of a structured request, the ce-* headers and body of a binary one, and
// for anything else a CloudEvent of type "duct.invoke" carrying the body.
func structured(r *http.Request, body []byte) ([]byte, error) {
	if isStructured(r) && !isBinary(r) {
		return body, nil
	}
	var b bytes.Buffer
	b.Grow(len(body) + 256)
	b.WriteByte('{')
	ct := r.Header.Get("Content-Type")
	if isBinary(r) {
		for k, vs := range r.Header {
			if len(k) > 3 && strings.EqualFold(k[:3], "ce-") && len(vs) > 0 {
				field(&b, strings.ToLower(k[3:]), unescape(vs[0]))
			}
		}
		if ct != "" {
			field(&b, "datacontenttype", ct)
		}
		data(&b, body, ct)
	} else {
		id := r.Header.Get("X-Duct-Invocation-Id")
		if id == "" {
			id = randomID()
		}
		field(&b, "specversion", "1.0")
		field(&b, "id", id)
		field(&b, "source", "duct")
		field(&b, "type", "duct.invoke")
		field(&b, "time", time.Now().UTC().Format(time.RFC3339Nano))
		if len(body) > 0 {
			if json.Valid(body) {
				ct = "application/json"
			} else if ct == "" || isJSON(ct) {
				ct = "text/plain"
			}
			field(&b, "datacontenttype", ct)
			data(&b, body, ct)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func field(b *bytes.Buffer, k, v string) {
	if b.Len() > 1 {
		b.WriteByte(',')
	}
	kb, _ := json.Marshal(k)
	vb, _ := json.Marshal(v)
	b.Write(kb)
	b.WriteByte(':')
	b.Write(vb)
}

// data adds the event data as the SDK reads it: JSON as it is when the
// content type is JSON (or absent), text as a string, anything else in
// data_base64.
func data(b *bytes.Buffer, body []byte, ct string) {
	if len(body) == 0 {
		return
	}
	switch {
	case (ct == "" || isJSON(ct)) && json.Valid(body):
		b.WriteString(`,"data":`)
		b.Write(body)
	case ct != "" && !isJSON(ct) && utf8.Valid(body):
		field(b, "data", string(body))
	default:
		field(b, "data_base64", base64.StdEncoding.EncodeToString(body))
	}
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// unescape undoes the percent-encoding of ce-* header values.
func unescape(v string) string {
	if strings.IndexByte(v, '%') < 0 {
		return v
	}
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
