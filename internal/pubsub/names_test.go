package pubsub

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"abc", true},
		{"uploads", true},
		{"A-b_c.d~e+f%g", true},
		{"x" + strings.Repeat("y", 254), true},
		{"ab", false},                           // too short
		{"x" + strings.Repeat("y", 255), false}, // too long
		{"1abc", false},                         // must start with a letter
		{"-abc", false},
		{"goog-topic", false}, // reserved
		{"GOOGle", false},
		{"has space", false},
		{"slash/name", false},
		{"star*", false},
		{"gt>", false},
		{"émoji", false},
		{"", false},
	} {
		err := checkName("topic", tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("checkName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, duct.ErrInvalid) {
			t.Errorf("checkName(%q) = %v, want an ErrInvalid", tc.name, err)
		}
	}
}

func TestKVKeyRoundTrip(t *testing.T) {
	for _, name := range []string{"abc", "a.b", "a..b", "x~y+z%w", "A-b_c.d~e+f%g", "ab=cd"} {
		key := kvKey(name)
		if strings.ContainsAny(key, ".~+% ") {
			t.Errorf("kvKey(%q) = %q: not a safe key", name, key)
		}
		if back, ok := nameFromKey(key); !ok || back != name {
			t.Errorf("nameFromKey(kvKey(%q)) = %q, %v", name, back, ok)
		}
	}
	if kvKey("a.b") == kvKey("a=2Eb") {
		t.Error("kvKey is not one to one")
	}
}

func TestCheckMessages(t *testing.T) {
	big := func(n int) []byte { return make([]byte, n) }
	many := func(n int) []Message {
		out := make([]Message, n)
		for i := range out {
			out[i] = Message{Data: []byte("x")}
		}
		return out
	}
	attrs := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m["k"+strings.Repeat("x", i)] = "v"
		}
		return m
	}
	for _, tc := range []struct {
		name string
		msgs []Message
		want error // nil, ErrInvalid or ErrTooLarge
	}{
		{"one", many(1), nil},
		{"none", nil, duct.ErrInvalid},
		{"1000", many(1000), nil},
		{"1001", many(1001), duct.ErrTooLarge},
		{"10 MB", []Message{{Data: big(MaxMessageSize)}}, nil},
		{"10 MB and an attribute", []Message{{Data: big(MaxMessageSize - 2), Attributes: map[string]string{"a": "bc"}}}, duct.ErrTooLarge},
		{"request over 10 MB", []Message{{Data: big(MaxMessageSize / 2)}, {Data: big(MaxMessageSize/2 + 1)}}, duct.ErrTooLarge},
		{"empty", []Message{{}}, duct.ErrInvalid},
		{"attributes only", []Message{{Attributes: map[string]string{"a": "b"}}}, nil},
		{"100 attributes", []Message{{Attributes: attrs(100)}}, nil},
		{"101 attributes", []Message{{Attributes: attrs(101)}}, duct.ErrInvalid},
		{"key 256", []Message{{Attributes: map[string]string{strings.Repeat("k", 256): "v"}}}, nil},
		{"key 257", []Message{{Attributes: map[string]string{strings.Repeat("k", 257): "v"}}}, duct.ErrInvalid},
		{"value 1024", []Message{{Attributes: map[string]string{"k": strings.Repeat("v", 1024)}}}, nil},
		{"value 1025", []Message{{Attributes: map[string]string{"k": strings.Repeat("v", 1025)}}}, duct.ErrInvalid},
		{"empty key", []Message{{Attributes: map[string]string{"": "v"}}}, duct.ErrInvalid},
		{"goog key", []Message{{Attributes: map[string]string{"googKey": "v"}}}, duct.ErrInvalid},
		{"bad utf8", []Message{{Attributes: map[string]string{"k": "\xff"}}}, duct.ErrInvalid},
		{"ordering key 1024", []Message{{Data: []byte("x"), OrderingKey: strings.Repeat("o", 1024)}}, nil},
		{"ordering key 1025", []Message{{Data: []byte("x"), OrderingKey: strings.Repeat("o", 1025)}}, duct.ErrInvalid},
	} {
		err := checkMessages(tc.msgs)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v, want ok", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestNormSub(t *testing.T) {
	base := Subscription{Name: "sub", Topic: "topic"}
	with := func(f func(*Subscription)) Subscription { s := base; f(&s); return s }
	for _, tc := range []struct {
		name string
		sub  Subscription
		ok   bool
	}{
		{"defaults", base, true},
		{"ack 10s", with(func(s *Subscription) { s.AckDeadline = 10 * time.Second }), true},
		{"ack 600s", with(func(s *Subscription) { s.AckDeadline = 600 * time.Second }), true},
		{"ack 9s", with(func(s *Subscription) { s.AckDeadline = 9 * time.Second }), false},
		{"ack 601s", with(func(s *Subscription) { s.AckDeadline = 601 * time.Second }), false},
		{"retry", with(func(s *Subscription) { s.Retry = &RetryPolicy{MinBackoff: time.Second, MaxBackoff: time.Minute} }), true},
		{"retry defaults", with(func(s *Subscription) { s.Retry = &RetryPolicy{} }), true},
		{"retry min > max", with(func(s *Subscription) { s.Retry = &RetryPolicy{MinBackoff: time.Minute, MaxBackoff: time.Second} }), false},
		{"retry max 601s", with(func(s *Subscription) { s.Retry = &RetryPolicy{MaxBackoff: 601 * time.Second} }), false},
		{"retry negative", with(func(s *Subscription) { s.Retry = &RetryPolicy{MinBackoff: -1} }), false},
		{"dead letter 5", with(func(s *Subscription) { s.DeadLetter = &DeadLetterPolicy{Topic: "dlq", MaxAttempts: 5} }), true},
		{"dead letter 100", with(func(s *Subscription) { s.DeadLetter = &DeadLetterPolicy{Topic: "dlq", MaxAttempts: 100} }), true},
		{"dead letter default", with(func(s *Subscription) { s.DeadLetter = &DeadLetterPolicy{Topic: "dlq"} }), true},
		{"dead letter 4", with(func(s *Subscription) { s.DeadLetter = &DeadLetterPolicy{Topic: "dlq", MaxAttempts: 4} }), false},
		{"dead letter 101", with(func(s *Subscription) { s.DeadLetter = &DeadLetterPolicy{Topic: "dlq", MaxAttempts: 101} }), false},
		{"dead letter no topic", with(func(s *Subscription) { s.DeadLetter = &DeadLetterPolicy{MaxAttempts: 5} }), false},
		{"filter", with(func(s *Subscription) { s.Filter = `attributes.k = "v"` }), true},
		{"bad filter", with(func(s *Subscription) { s.Filter = `attributes.k == "v"` }), false},
		{"long filter", with(func(s *Subscription) { s.Filter = "attributes:" + strings.Repeat("k", 250) }), false},
		{"push", with(func(s *Subscription) { s.Push = &PushConfig{Endpoint: "https://example.com/push"} }), true},
		{"push relative", with(func(s *Subscription) { s.Push = &PushConfig{Endpoint: "/push"} }), false},
		{"push ftp", with(func(s *Subscription) { s.Push = &PushConfig{Endpoint: "ftp://example.com/"} }), false},
		{"push credentials", with(func(s *Subscription) { s.Push = &PushConfig{Endpoint: "https://u:p@example.com/"} }), false},
		{"retention 10m", with(func(s *Subscription) { s.Retention = 10 * time.Minute }), true},
		{"retention 7d", with(func(s *Subscription) { s.Retention = 7 * 24 * time.Hour }), true},
		{"retention 9m", with(func(s *Subscription) { s.Retention = 9 * time.Minute }), false},
		{"retention 8d", with(func(s *Subscription) { s.Retention = 8 * 24 * time.Hour }), false},
		{"labels", with(func(s *Subscription) { s.Labels = map[string]string{"team": "a-1", "env": ""} }), true},
		{"label upper", with(func(s *Subscription) { s.Labels = map[string]string{"Team": "a"} }), false},
		{"bad name", with(func(s *Subscription) { s.Name = "x" }), false},
		{"bad topic", with(func(s *Subscription) { s.Topic = "goog" }), false},
	} {
		got, err := normSub(tc.sub)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err != nil && !errors.Is(err, duct.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
		if err == nil {
			if got.AckDeadline == 0 {
				t.Errorf("%s: no default ack deadline", tc.name)
			}
			if got.Retry != nil && (got.Retry.MinBackoff == 0 || got.Retry.MaxBackoff == 0) {
				t.Errorf("%s: retry policy without defaults: %+v", tc.name, *got.Retry)
			}
			if got.DeadLetter != nil && got.DeadLetter.MaxAttempts == 0 {
				t.Errorf("%s: dead-letter policy without default attempts", tc.name)
			}
		}
	}
}

func TestNormTopic(t *testing.T) {
	for _, tc := range []struct {
		t  Topic
		ok bool
	}{
		{Topic{Name: "abc"}, true},
		{Topic{Name: "abc", Retention: 10 * time.Minute}, true},
		{Topic{Name: "abc", Retention: 31 * 24 * time.Hour}, true},
		{Topic{Name: "abc", Retention: time.Minute}, false},
		{Topic{Name: "abc", Retention: 32 * 24 * time.Hour}, false},
		{Topic{Name: "ab"}, false},
	} {
		got, err := normTopic(tc.t)
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v, want ok=%v", tc.t, err, tc.ok)
		}
		if err == nil && got.Retention == 0 {
			t.Errorf("%+v: no default retention", tc.t)
		}
	}
}

func TestBackoff(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		min, max time.Duration
		attempt  int
		want     time.Duration
	}{
		{s, 60 * s, 1, s},
		{s, 60 * s, 2, 2 * s},
		{s, 60 * s, 3, 4 * s},
		{s, 60 * s, 7, 60 * s},
		{s, 60 * s, 1000, 60 * s},
		{10 * s, 600 * s, 1, 10 * s},
		{0, 600 * s, 5, 0},
		{5 * s, 5 * s, 3, 5 * s},
	} {
		if got := backoff(tc.min, tc.max, tc.attempt); got != tc.want {
			t.Errorf("backoff(%s, %s, %d) = %s, want %s", tc.min, tc.max, tc.attempt, got, tc.want)
		}
	}
}
