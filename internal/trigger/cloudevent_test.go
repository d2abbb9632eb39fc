package trigger

import (
	"bytes"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/duct-dev/duct"
)

func TestReadHTTP(t *testing.T) {
	when := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		body   string
		want   []duct.CloudEvent
	}{
		{"binary", http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"1"}, "Ce-Source": {"/s"}, "Ce-Type": {"t"},
			"Ce-Time": {"2026-05-01T10:00:00Z"}, "Ce-Subject": {"a%20b"}, "Ce-Traceparent": {"00-x"}, "Content-Type": {"text/plain"}},
			"hi", []duct.CloudEvent{{SpecVersion: "1.0", ID: "1", Source: "/s", Type: "t", Time: when, Subject: "a b",
				DataContentType: "text/plain", Extensions: map[string]string{"traceparent": "00-x"}, Data: []byte("hi")}}},
		{"structured JSON data", http.Header{"Content-Type": {"application/cloudevents+json; charset=utf-8"}},
			`{"specversion":"1.0","id":"2","source":"/s","type":"t","data":{"a":1},"count":3,"flag":true}`,
			[]duct.CloudEvent{{SpecVersion: "1.0", ID: "2", Source: "/s", Type: "t", DataContentType: "application/json",
				Data: []byte(`{"a":1}`), Extensions: map[string]string{"count": "3", "flag": "true"}}}},
		{"structured text data", http.Header{"Content-Type": {"application/cloudevents+json"}},
			`{"specversion":"1.0","id":"3","source":"/s","type":"t","datacontenttype":"text/plain","data":"words"}`,
			[]duct.CloudEvent{{SpecVersion: "1.0", ID: "3", Source: "/s", Type: "t", DataContentType: "text/plain", Data: []byte("words")}}},
		{"structured base64", http.Header{"Content-Type": {"application/cloudevents+json"}},
			`{"specversion":"1.0","id":"4","source":"/s","type":"t","data_base64":"AAE="}`,
			[]duct.CloudEvent{{SpecVersion: "1.0", ID: "4", Source: "/s", Type: "t", Data: []byte{0, 1}}}},
		{"batch", http.Header{"Content-Type": {"application/cloudevents-batch+json"}},
			`[{"specversion":"1.0","id":"5","source":"/s","type":"t"},{"specversion":"1.0","id":"6","source":"/s","type":"u"}]`,
			[]duct.CloudEvent{{SpecVersion: "1.0", ID: "5", Source: "/s", Type: "t"}, {SpecVersion: "1.0", ID: "6", Source: "/s", Type: "u"}}},
	}
	for _, tt := range tests {
		got, err := ReadHTTP(tt.header, []byte(tt.body))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

// TestBinaryRoundTrip: what Duct sends a function reads back as the same
// event.
func TestBinaryRoundTrip(t *testing.T) {
	ev := duct.CloudEvent{SpecVersion: "1.0", ID: "id \"1\" 100%", Source: "//pubsub.googleapis.com/projects/duct/topics/t", Type: "t",
		Subject: "é", Time: time.Date(2026, 5, 1, 10, 0, 0, 5, time.UTC), DataContentType: "application/json", DataSchema: "/schema",
		Extensions: map[string]string{"deliveryattempt": "2"}, Data: []byte(`{"x":1}`)}
	got, err := ReadHTTP(BinaryHeader(&ev), ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[0], ev) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got[0], ev)
	}
}

// FuzzReadHTTP: no body crashes the structured and batch readers, and
// what they accept is a valid event whose binary form reads back alike.
func FuzzReadHTTP(f *testing.F) {
	f.Add(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":[1,2]}}`, false)
	f.Add(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AAE=","x1":12}`, false)
	f.Add(`[{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"2026-05-01T10:00:00Z"}]`, true)
	f.Fuzz(func(t *testing.T, body string, batch bool) {
		ct := MediaStructured
		if batch {
			ct = MediaBatch
		}
		evs, err := ReadHTTP(http.Header{"Content-Type": {ct}}, []byte(body))
		if err != nil {
			if !errors.Is(err, duct.ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		for _, ev := range evs {
			if err := ev.Validate(); err != nil {
				t.Fatalf("accepted an invalid event: %v", err)
			}
			back, err := ReadHTTP(BinaryHeader(&ev), ev.Data)
			if err != nil {
				t.Fatalf("binary form of %+v: %v", ev, err)
			}
			if b := back[0]; b.ID != ev.ID || b.Source != ev.Source || b.Type != ev.Type || !bytes.Equal(b.Data, ev.Data) {
				t.Fatalf("binary round trip: %+v, want %+v", b, ev)
			}
		}
	})
}
