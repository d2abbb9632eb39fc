package manifest

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/duct-dev/duct"
)

// FuzzParse: Parse never panics; its errors are *duct.InvalidError about
// duct.yaml; what it accepts marshals and parses back to the same
// Manifest, and laid over a valid function still validates (bar the one
// rule between fields that flags may settle).
func FuzzParse(f *testing.F) {
	brief, err := os.ReadFile("testdata/brief.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(brief))
	for _, s := range []string{
		"", "~", "name: a\n---\nname: b", "timeout: 30", "concurrency: 0", "env: {A: 1, B: ~}",
		"triggers: [{http: {path: /, methods: [GET, POST]}}, {kv: {bucket: b}}]",
		"name: &a x\nhandler: *a", "retry: {attempts: 0, onSuccess: ''}", "command: ['./a b', \"\\t\"]",
		"env: {A: \"\\u00e9\\x01\"}", "memroy: 1Gi", "maxInstances: 0x7fffffff\nminInstances: 3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		m, err := Parse([]byte(in))
		if err != nil {
			var ie *duct.InvalidError
			if !errors.As(err, &ie) || !strings.HasPrefix(ie.Field, FileName) {
				t.Fatalf("Parse error %#v: want a *duct.InvalidError about %s", err, FileName)
			}
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal()): %v\n%s", err, out)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("Parse(Marshal()) = %s, want %s", dump(again), dump(m))
		}
		base := duct.Function{Name: "base", Runtime: duct.RuntimeGo}
		if m.Command != nil {
			base.Runtime = duct.RuntimeImage // a command needs runtime image
		}
		got := m.Apply(base)
		if !reflect.DeepEqual(got, again.Apply(base)) {
			t.Fatal("Apply differs after a round trip")
		}
		if m.Command != nil && m.Runtime != nil && *m.Runtime != duct.RuntimeImage {
			return // a cross-field rule left to the final validation
		}
		if m.MinInstances != nil && m.MaxInstances == nil && *m.MinInstances > duct.DefaultMaxInstances {
			return // flags may raise maxInstances
		}
		if err := got.WithDefaults().Validate(); err != nil {
			t.Fatalf("Parse accepted a manifest that cannot validate: %v\n%s", err, in)
		}
	})
}
