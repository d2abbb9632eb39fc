package trigger

import (
	"slices"
	"testing"

	"github.com/duct-dev/duct"
)

func httpTrigger(path string, methods ...string) duct.Trigger {
	return duct.Trigger{HTTP: &duct.HTTPTrigger{Path: path, Methods: methods}}
}

func TestRoutesMatch(t *testing.T) {
	rt, conflicts := buildRoutes(map[string][]duct.Trigger{
		"slack":  {httpTrigger("/hooks/slack", "POST")},
		"status": {httpTrigger("/hooks/slack", "GET", "HEAD")},
		"hooks":  {httpTrigger("/hooks/*")},
		"gh":     {httpTrigger("/hooks/gh/*", "POST")},
		"late":   {httpTrigger("/hooks/slack", "POST")}, // the same route as slack
		"a-late": {httpTrigger("/solo")},
		"z-late": {httpTrigger("/solo", "PUT")},
	})
	if want := 2; len(conflicts) != want {
		t.Errorf("conflicts %q, want %d", conflicts, want)
	}
	tests := []struct {
		method, path string
		fn           string
		allow        []string
		found        bool
	}{
		{"POST", "/hooks/slack", "late", nil, true}, // "late" sorts before "slack" and keeps the route
		{"GET", "/hooks/slack", "status", nil, true},
		{"DELETE", "/hooks/slack", "", []string{"GET", "HEAD", "POST"}, true},
		{"GET", "/hooks/slack/x", "hooks", nil, true},
		{"GET", "/hooks", "hooks", nil, true},
		{"GET", "/hooks/", "hooks", nil, true},
		{"POST", "/hooks/gh/push", "gh", nil, true},
		{"POST", "/hooks/gh", "gh", nil, true},
		{"GET", "/hooks/gh/push", "", []string{"POST"}, true}, // the longest prefix decides
		{"GET", "/hooksx", "", nil, false},
		{"GET", "/solo", "a-late", nil, true},
		{"GET", "/other", "", nil, false},
	}
	for _, tt := range tests {
		fn, allow, found := rt.Match(tt.method, tt.path)
		if fn != tt.fn || found != tt.found || !slices.Equal(allow, tt.allow) {
			t.Errorf("Match(%s %s) = %q %v %v, want %q %v %v", tt.method, tt.path, fn, allow, found, tt.fn, tt.allow, tt.found)
		}
	}
	var empty *Routes
	if _, _, found := empty.Match("GET", "/x"); found || !empty.Empty() {
		t.Error("a nil table matches")
	}
}

func TestEventMatch(t *testing.T) {
	idx := buildEvents(map[string][]duct.Trigger{
		"any":    {{Event: &duct.EventTrigger{Type: "com.example.created"}}},
		"exact":  {{Event: &duct.EventTrigger{Type: "com.example.created", Source: "/orders"}}},
		"prefix": {{Event: &duct.EventTrigger{Type: "com.example.created", Source: "https://shop.example/*"}}},
		"twice": {{Event: &duct.EventTrigger{Type: "com.example.created"}},
			{Event: &duct.EventTrigger{Type: "com.example.created", Source: "/orders"}}},
		"other": {{Event: &duct.EventTrigger{Type: "com.example.deleted"}}},
	})
	tests := []struct {
		typ, source string
		want        []string
	}{
		{"com.example.created", "/orders", []string{"any", "exact", "twice"}},
		{"com.example.created", "/orders/1", []string{"any", "twice"}},
		{"com.example.created", "https://shop.example/a/b", []string{"any", "prefix", "twice"}},
		{"com.example.created", "https://shop.example", []string{"any", "twice"}},
		{"com.example.deleted", "/x", []string{"other"}},
		{"com.example.CREATED", "/orders", nil},
	}
	for _, tt := range tests {
		got := idx.match(&duct.CloudEvent{Type: tt.typ, Source: tt.source})
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s from %s: %v, want %v", tt.typ, tt.source, got, tt.want)
		}
	}
}
