package pubsub

import (
	"errors"
	"strings"
	"testing"

	"github.com/duct-dev/duct"
)

func TestFilterMatch(t *testing.T) {
	attrs := map[string]string{"kind": "image", "size": "large", "iana.org/language_tag": "en", "empty": "", "with-dash": "1", "quote": `a"b`}
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{``, true},
		{`   `, true},
		{`attributes:kind`, true},
		{`attributes:nope`, false},
		{`attributes : kind`, true},
		{`attributes:empty`, true},
		{`attributes.kind = "image"`, true},
		{`attributes.kind="image"`, true},
		{`attributes.kind = 'image'`, true},
		{`attributes.kind = "video"`, false},
		{`attributes.kind != "video"`, true},
		{`attributes.kind != "image"`, false},
		{`attributes.nope != "x"`, true}, // NOT of =
		{`attributes.nope = "x"`, false},
		{`attributes.empty = ""`, true},
		{`attributes.with-dash = "1"`, true},
		{`attributes."iana.org/language_tag" = "en"`, true},
		{`attributes:"iana.org/language_tag"`, true},
		{`attributes.quote = "a\"b"`, true},
		{`attributes.quote = 'a"b'`, true},
		{`attributes.kind = "\x69mage"`, true},
		{`attributes.kind = "\u0069mage"`, true},
		{`attributes.kind = "\151mage"`, true},
		{`hasPrefix(attributes.kind, "im")`, true},
		{`hasPrefix(attributes.kind, "")`, true},
		{`hasPrefix(attributes.kind, "vi")`, false},
		{`hasPrefix(attributes.nope, "")`, false},
		{`hasPrefix( attributes.kind , "im" )`, true},
		{`NOT attributes:kind`, false},
		{`NOT attributes:nope`, true},
		{`-attributes:nope`, true},
		{`-attributes:kind`, false},
		{`--attributes:kind`, true},
		{`NOT NOT attributes:kind`, true},
		{`NOT (attributes:kind AND attributes:nope)`, true},
		{`attributes:kind AND attributes:size`, true},
		{`attributes:kind AND attributes:nope`, false},
		{`attributes:kind AND attributes:size AND attributes.size = "large"`, true},
		{`attributes:nope OR attributes:kind`, true},
		{`attributes:nope OR attributes.kind = "video"`, false},
		{`attributes:kind AND (attributes.size = "small" OR attributes.size = "large")`, true},
		{`(attributes:nope OR attributes:kind) AND NOT hasPrefix(attributes.size, "s")`, true},
		{`((attributes:kind))`, true},
		{"attributes:kind\tAND\nattributes:size", true},
		{`attributes:kind AND(attributes:size)`, true},
	} {
		f, err := ParseFilter(tc.filter)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tc.filter, err)
			continue
		}
		if got := f.Match(attrs); got != tc.want {
			t.Errorf("%q matched %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	for _, tc := range []struct {
		filter string
		want   string // in the message
	}{
		{`attributes:a AND attributes:b OR attributes:c`, "AND and OR cannot be mixed"},
		{`attributes:a OR attributes:b AND attributes:c`, "AND and OR cannot be mixed"},
		{`attributes.k == "v"`, "quoted string"},
		{`attributes.k = v`, "quoted string"},
		{`attributes.k = "v`, "not closed"},
		{`attributes.k`, "= or !="},
		{`attributes`, ": or ."},
		{`attribute:k`, "expected attributes"},
		{`attributes:`, "attribute key"},
		{`attributes:k AND`, "end of the filter"},
		{`attributes:k and attributes:j`, "unexpected"},
		{`(attributes:k`, "expected )"},
		{`attributes:k)`, "unexpected"},
		{`hasPrefix(attributes.k "p")`, "expected ,"},
		{`hasPrefix(attributes.k, p)`, "quoted string"},
		{`hasPrefix(attributes.k, "p"`, "close hasPrefix"},
		{`hasprefix(attributes.k, "p")`, "expected attributes"},
		{`- attributes:k`, "followed directly"},
		{`NOTattributes:k`, "expected attributes"},
		{`attributes.k = "\q"`, "unknown escape"},
		{`attributes.k = "\x6"`, "escape"},
		{`attributes.k = "\uD800"`, "code point"},
		{`attributes."" = "v"`, "empty attribute key"},
		{`attributes.k = 1`, "quoted string"},
		{strings.Repeat("(", 40) + "attributes:k" + strings.Repeat(")", 40), ""},
		{strings.Repeat("(", 70) + "attributes:k" + strings.Repeat(")", 70), "nested too deeply"},
		{strings.Repeat("-", 70) + "attributes:k", "nested too deeply"},
		{"attributes:" + strings.Repeat("k", 300), "at most"},
	} {
		_, err := ParseFilter(tc.filter)
		if tc.want == "" {
			if err != nil {
				t.Errorf("ParseFilter(%q): %v", tc.filter, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, duct.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFilter(%q) = %v, want an invalid error mentioning %q", tc.filter, err, tc.want)
		}
	}
}

// FuzzFilter: the parser never panics, accepts nothing over the length
// limit, and what it accepts evaluates without panicking.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`attributes:kind`, `attributes.kind = "image"`, `hasPrefix(attributes.k, "p")`,
		`NOT (attributes:a OR -attributes:b) AND attributes."x.y" != 'z\n\x41\u00e9'`,
		`((attributes:a))`, `attributes.k = "\377"`, `-`, `(`, `attributes.k = "`,
	} {
		f.Add(s, "k", "v")
	}
	f.Fuzz(func(t *testing.T, s, k, v string) {
		flt, err := ParseFilter(s)
		if err != nil {
			if !errors.Is(err, duct.ErrInvalid) {
				t.Fatalf("ParseFilter(%q): %v is not ErrInvalid", s, err)
			}
			return
		}
		if len(s) > MaxFilterLength {
			t.Fatalf("accepted a filter of %d bytes", len(s))
		}
		_ = flt.Match(map[string]string{k: v})
		_ = flt.Match(nil)
	})
}
