package pubsub

import (
	"bytes"
	"maps"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{Data: []byte("hello")},
		{Attributes: map[string]string{"a": "b", "with\nnewline": "and: colon", "": ""}},
		{Data: []byte{0, 1, 2}, OrderingKey: "key", Attributes: map[string]string{"k": "v"}},
		{Data: bytes.Repeat([]byte("x"), 1<<20), OrderingKey: "ü"},
	} {
		var got Message
		if err := decodeEnvelope(encodeEnvelope(&m), &got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, m.Data) || got.OrderingKey != m.OrderingKey || !maps.Equal(got.Attributes, m.Attributes) {
			t.Errorf("round trip of %+v gave %+v", m, got)
		}
	}
	for _, bad := range [][]byte{nil, {}, {2}, {1}, {1, 5, 'a'}, {1, 0, 200}, {1, 0, 1, 9, 'k'}} {
		if err := decodeEnvelope(bad, &Message{}); err == nil {
			t.Errorf("decodeEnvelope(%v) accepted it", bad)
		}
	}
}

func FuzzEnvelope(f *testing.F) {
	f.Add(encodeEnvelope(&Message{Data: []byte("x"), Attributes: map[string]string{"a": "b"}, OrderingKey: "o"}))
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if decodeEnvelope(b, &m) != nil {
			return
		}
		var again Message
		if err := decodeEnvelope(encodeEnvelope(&m), &again); err != nil {
			t.Fatalf("re-encoding a decoded message: %v", err)
		}
	})
}

func TestAckIDRoundTrip(t *testing.T) {
	for _, a := range []ackID{
		{inc: 1, gen: 1, sseq: 1, dseq: 1, count: 1},
		{inc: 0xffffffffffffffff, gen: 7, sseq: 1 << 40, dseq: 1 << 41, count: 100},
	} {
		got, err := parseAckID(a.String())
		if err != nil || got != a {
			t.Errorf("parseAckID(%v.String()) = %v, %v", a, got, err)
		}
	}
	for _, bad := range []string{"", "x", "!!!!", ackID{inc: 1, gen: 1}.String(), "AQEBAQEB" + "AAAA", string(make([]byte, 100))} {
		if _, err := parseAckID(bad); err == nil {
			t.Errorf("parseAckID(%q) accepted it", bad)
		}
	}
	if got := ackSubject("$JS.ACK.S.C.", ackID{count: 2, sseq: 10, dseq: 12}); got != "$JS.ACK.S.C.2.10.12.0.0" {
		t.Errorf("ack subject %q", got)
	}
}

func TestReplyInfo(t *testing.T) {
	for _, tc := range []struct {
		reply             string
		count, sseq, dseq uint64
		ts                int64
		ok                bool
	}{
		{"$JS.ACK.S.C.2.10.12.1700000000000000000.5", 2, 10, 12, 1700000000000000000, true},
		{"$JS.ACK.dom.hash.S.C.3.11.13.1700000000000000001.0.rand", 3, 11, 13, 1700000000000000001, true},
		{"$JS.ACK.S.C.x.10.12.1.5", 0, 0, 0, 0, false},
		{"_INBOX.abc", 0, 0, 0, 0, false},
		{"$JS.NAK.S.C.2.10.12.1.5", 0, 0, 0, 0, false},
	} {
		count, sseq, dseq, ts, ok := replyInfo(tc.reply)
		if ok != tc.ok || ok && (count != tc.count || sseq != tc.sseq || dseq != tc.dseq || ts != tc.ts) {
			t.Errorf("replyInfo(%q) = %d %d %d %d %v", tc.reply, count, sseq, dseq, ts, ok)
		}
	}
}
