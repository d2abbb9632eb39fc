package duct

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateTriggers(t *testing.T) {
	h := func(path string, methods ...string) Trigger {
		return Trigger{HTTP: &HTTPTrigger{Path: path, Methods: methods}}
	}
	tests := []struct {
		name     string
		triggers []Trigger
		want     string // "" for valid
	}{
		{"routes", []Trigger{h("/hooks/slack", "POST"), h("/hooks/slack", "GET"), h("/gh/*"), h("/a-b/c.d~e:f@g")}, ""},
		{"no kind", []Trigger{{}}, "declares 0 kinds"},
		{"relative path", []Trigger{h("hooks")}, "absolute path"},
		{"root", []Trigger{h("/")}, "every path"},
		{"catch-all", []Trigger{h("/*")}, "every path"},
		{"star inside", []Trigger{h("/a*")}, "only at the end"},
		{"query", []Trigger{h("/a?b=1")}, "letters, digits"},
		{"percent", []Trigger{h("/a%20b")}, "letters, digits"},
		{"dot segment", []Trigger{h("/a/../api")}, "segments"},
		{"double slash", []Trigger{h("/a//b")}, "segments"},
		{"api", []Trigger{h("/api/v2")}, "Duct's own"},
		{"api itself", []Trigger{h("/api")}, "Duct's own"},
		{"fn prefix", []Trigger{h("/fn/*")}, "Duct's own"},
		{"healthz", []Trigger{h("/healthz")}, "Duct's own"},
		{"not reserved", []Trigger{h("/apis"), h("/metricsx")}, ""},
		{"lower-case method", []Trigger{h("/a", "post")}, "upper case"},
		{"method twice", []Trigger{h("/a", "POST", "POST")}, "twice"},
		{"same route twice", []Trigger{h("/a", "POST"), h("/a", "PUT", "POST")}, "same methods"},
		{"any and one", []Trigger{h("/a"), h("/a", "GET")}, "same methods"},
		{"same trigger twice", []Trigger{{Event: &EventTrigger{Type: "t"}}, {Event: &EventTrigger{Type: "t"}}}, "are the same trigger"},
		{"topic", []Trigger{{Topic: &TopicTrigger{Name: "uploads", Filter: `attributes.kind = "image"`}}}, ""},
		{"topic short", []Trigger{{Topic: &TopicTrigger{Name: "ab"}}}, "topic name"},
		{"topic goog", []Trigger{{Topic: &TopicTrigger{Name: "google-x"}}}, "topic name"},
		{"schedule", []Trigger{{Schedule: &ScheduleTrigger{Cron: "0 * * * *", Timezone: "Europe/Paris"}}}, ""},
		{"schedule empty", []Trigger{{Schedule: &ScheduleTrigger{Cron: " "}}}, "required"},
		{"schedule zone in spec", []Trigger{{Schedule: &ScheduleTrigger{Cron: "CRON_TZ=UTC 0 * * * *"}}}, "timezone field"},
		{"schedule bad zone", []Trigger{{Schedule: &ScheduleTrigger{Cron: "@hourly", Timezone: "Europe/Atlantis"}}}, "not a known time zone"},
		{"schedule local", []Trigger{{Schedule: &ScheduleTrigger{Cron: "@hourly", Timezone: "Local"}}}, "depends on the server"},
		{"event", []Trigger{{Event: &EventTrigger{Type: "com.example.x", Source: "https://example.com/*"}}}, ""},
		{"event spaces", []Trigger{{Event: &EventTrigger{Type: "a b"}}}, "without spaces"},
		{"event star inside", []Trigger{{Event: &EventTrigger{Type: "t", Source: "/a*/b"}}}, "prefix"},
	}
	for _, tt := range tests {
		err := validateTriggers(tt.triggers)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want an invalid error about %q", tt.name, err, tt.want)
		}
	}
}

func TestTriggerID(t *testing.T) {
	a := Trigger{Schedule: &ScheduleTrigger{Cron: "0 * * * *"}}
	b := Trigger{Schedule: &ScheduleTrigger{Cron: "0 * * * *"}}
	c := Trigger{Schedule: &ScheduleTrigger{Cron: "0 * * * *", Timezone: "UTC"}}
	if a.ID() != b.ID() || a.ID() == c.ID() || !strings.HasPrefix(a.ID(), "schedule-") || len(a.ID()) != len("schedule-")+8 {
		t.Fatalf("ids %s %s %s", a.ID(), b.ID(), c.ID())
	}
}

func TestCloudEventValidate(t *testing.T) {
	ok := CloudEvent{SpecVersion: "1.0", ID: "1", Source: "/s", Type: "t", Extensions: map[string]string{"traceparent": "x"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*CloudEvent){
		func(e *CloudEvent) { e.SpecVersion = "" },
		func(e *CloudEvent) { e.SpecVersion = "0.3" },
		func(e *CloudEvent) { e.ID = "" },
		func(e *CloudEvent) { e.Source = "" },
		func(e *CloudEvent) { e.Source = "a b" },
		func(e *CloudEvent) { e.Type = "" },
		func(e *CloudEvent) { e.Extensions = map[string]string{"Bad": "x"} },
		func(e *CloudEvent) { e.Extensions = map[string]string{"data": "x"} },
	} {
		e := ok
		bad(&e)
		if err := e.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want invalid", e, err)
		}
	}
}
