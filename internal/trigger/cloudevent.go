package trigger

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/duct-dev/duct"
)

// Media types of CloudEvents' HTTP binding.
const (
	MediaStructured = "application/cloudevents+json"
	MediaBatch      = "application/cloudevents-batch+json"
	headerPrefix    = "Ce-"
)

// MaxBatch bounds the events of one batch-mode request.
const MaxBatch = 100

// ReadHTTP reads the CloudEvents of a request in any of the HTTP
// binding's modes: structured (Content-Type application/cloudevents+json,
// the event as JSON), batch (application/cloudevents-batch+json, a JSON
// array of them) or binary (ce-* headers, the body as the data). Each
// event is validated; errors match duct.ErrInvalid.
func ReadHTTP(h http.Header, body []byte) ([]duct.CloudEvent, error) {
	ct := h.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == MediaStructured:
		ev, err := decodeStructured(body)
		if err != nil {
			return nil, err
		}
		return []duct.CloudEvent{ev}, nil
	case mt == MediaBatch:
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, duct.Invalid("body", "a batch is a JSON array of events: %v", err)
		}
		if len(raws) > MaxBatch {
			return nil, duct.Invalid("body", "%d events in one batch: at most %d", len(raws), MaxBatch)
		}
		out := make([]duct.CloudEvent, 0, len(raws))
		for i, raw := range raws {
			ev, err := decodeStructured(raw)
			if err != nil {
				return nil, fmt.Errorf("event %d of the batch: %w", i, err)
			}
			out = append(out, ev)
		}
		return out, nil
	case h.Get(headerPrefix+"Specversion") != "":
		ev, err := decodeBinary(h, body)
		if err != nil {
			return nil, err
		}
		return []duct.CloudEvent{ev}, nil
	}
	return nil, duct.Invalid("event", "not a CloudEvent: send it in binary mode (ce-specversion, ce-id, ce-source and ce-type headers, "+
		"the data as the body) or structured mode (Content-Type: %s)", MediaStructured)
}

func decodeBinary(h http.Header, body []byte) (duct.CloudEvent, error) {
	ev := duct.CloudEvent{DataContentType: h.Get("Content-Type")}
	if len(body) > 0 {
		ev.Data = body
	}
	for k, vs := range h {
		name, ok := strings.CutPrefix(http.CanonicalHeaderKey(k), headerPrefix)
		if !ok || len(vs) == 0 {
			continue
		}
		name = strings.ToLower(name)
		if len(vs) > 1 {
			return ev, duct.Invalid(name, "given %d times", len(vs))
		}
		v, err := url.PathUnescape(vs[0])
		if err != nil {
			return ev, duct.Invalid(name, "%q: bad percent-encoding", vs[0])
		}
		if err := setAttr(&ev, name, v); err != nil {
			return ev, err
		}
	}
	return ev, ev.Validate()
}

// setAttr sets context attribute name (lowercase) from its string form.
func setAttr(ev *duct.CloudEvent, name, v string) error {
	switch name {
	case "specversion":
		ev.SpecVersion = v
	case "id":
		ev.ID = v
	case "source":
		ev.Source = v
	case "type":
		ev.Type = v
	case "subject":
		ev.Subject = v
	case "dataschema":
		ev.DataSchema = v
	case "datacontenttype":
		ev.DataContentType = v
	case "time":
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return duct.Invalid("time", "%q: want an RFC 3339 timestamp", v)
		}
		ev.Time = t
	case "data", "data_base64":
		return duct.Invalid(name, "is not an attribute")
	default:
		if ev.Extensions == nil {
			ev.Extensions = map[string]string{}
		}
		ev.Extensions[name] = v
	}
	return nil
}

// decodeStructured reads one event in the JSON format.
func decodeStructured(raw []byte) (duct.CloudEvent, error) {
	var ev duct.CloudEvent
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return ev, duct.Invalid("body", "a structured event is a JSON object: %v", err)
	}
	for k, v := range m {
		if k == "data" || k == "data_base64" {
			continue
		}
		s, err := attrString(v)
		if err != nil {
			return ev, duct.Invalid(k, "%v", err)
		}
		if err := setAttr(&ev, k, s); err != nil {
			return ev, err
		}
	}
	data, hasData := m["data"]
	b64, hasB64 := m["data_base64"]
	switch {
	case hasData && hasB64:
		return ev, duct.Invalid("data", "an event has data or data_base64, not both")
	case hasB64:
		var s string
		if err := json.Unmarshal(b64, &s); err != nil {
			return ev, duct.Invalid("data_base64", "want a string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return ev, duct.Invalid("data_base64", "not base64: %v", err)
		}
		ev.Data = b
	case hasData && !bytes.Equal(bytes.TrimSpace(data), []byte("null")):
		if isJSON(ev.DataContentType) {
			ev.Data = bytes.TrimSpace(data)
			break
		}
		// Data of another type travels as a JSON string.
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			ev.Data = bytes.TrimSpace(data)
			break
		}
		ev.Data = []byte(s)
	}
	if hasData && ev.DataContentType == "" {
		ev.DataContentType = "application/json"
	}
	return ev, ev.Validate()
}

// attrString is an attribute's value in its canonical string form.
func attrString(v json.RawMessage) (string, error) {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return "", err
	}
	switch x := x.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		if x != float64(int64(x)) {
			return "", fmt.Errorf("%v: integers only", x)
		}
		return strconv.FormatInt(int64(x), 10), nil
	}
	return "", fmt.Errorf("want a string, a number or a boolean")
}

// isJSON reports whether a data content type is JSON (empty counts: the
// JSON format's default).
func isJSON(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// BinaryHeader returns ev's attributes as binary-mode headers: ce-* and
// Content-Type.
func BinaryHeader(ev *duct.CloudEvent) http.Header {
	h := http.Header{
		"Ce-Specversion": {ev.SpecVersion},
		"Ce-Id":          {headerValue(ev.ID)},
		"Ce-Source":      {headerValue(ev.Source)},
		"Ce-Type":        {headerValue(ev.Type)},
	}
	if ev.Subject != "" {
		h["Ce-Subject"] = []string{headerValue(ev.Subject)}
	}
	if !ev.Time.IsZero() {
		h["Ce-Time"] = []string{ev.Time.UTC().Format(time.RFC3339Nano)}
	}
	if ev.DataSchema != "" {
		h["Ce-Dataschema"] = []string{headerValue(ev.DataSchema)}
	}
	if ev.DataContentType != "" {
		h["Content-Type"] = []string{ev.DataContentType}
	}
	for k, v := range ev.Extensions {
		h[http.CanonicalHeaderKey(headerPrefix+k)] = []string{headerValue(v)}
	}
	return h
}

// headerValue percent-encodes what a header value cannot carry as it is
// (the binding's rule): bytes outside printable ASCII, and % and ".
func headerValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' || c == '"' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' || c == '"' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
