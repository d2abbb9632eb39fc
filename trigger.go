package duct

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// TriggerKind names what a trigger listens to.
type TriggerKind string

const (
	TriggerHTTP     TriggerKind = "http"
	TriggerTopic    TriggerKind = "topic"
	TriggerSchedule TriggerKind = "schedule"
	TriggerBucket   TriggerKind = "bucket"
	TriggerKV       TriggerKind = "kv"
	TriggerEvent    TriggerKind = "event"
)

// Kind says which of its fields t sets; "" when it sets none.
func (t Trigger) Kind() TriggerKind {
	switch {
	case t.HTTP != nil:
		return TriggerHTTP
	case t.Topic != nil:
		return TriggerTopic
	case t.Schedule != nil:
		return TriggerSchedule
	case t.Bucket != nil:
		return TriggerBucket
	case t.KV != nil:
		return TriggerKV
	case t.Event != nil:
		return TriggerEvent
	}
	return ""
}

// ID names a trigger by its content: its kind and the first 8 hex digits
// of the SHA-256 of its JSON form ("schedule-1f0c9a2b"). The same trigger
// keeps its ID from version to version, so that what the server keeps for
// it (a schedule's last tick, a topic trigger's subscription) carries over
// a redeploy, and a changed trigger is a new one.
func (t Trigger) ID() string {
	b, _ := json.Marshal(t)
	sum := sha256.Sum256(b)
	return string(t.Kind()) + "-" + hex.EncodeToString(sum[:4])
}

// CatchAll is the ending of an HTTP trigger path that makes it a prefix:
// "/hooks/*" serves /hooks and every path under /hooks/.
const CatchAll = "/*"

// reservedPaths are Duct's own: no HTTP trigger may serve them or a path
// under them.
var reservedPaths = []string{"/api", "/fn", "/metrics", "/healthz", "/readyz"}

var (
	routePathRE  = regexp.MustCompile(`^(/[A-Za-z0-9._~!$&'()+,;=:@-]*)+$`)
	methodRE     = regexp.MustCompile(`^[A-Z]{1,20}$`)
	eventTypeRE  = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`)
	eventSrcRE   = regexp.MustCompile(`^[\x21-\x7e]+$`)
	topicNameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`)
	cronPrefixRE = regexp.MustCompile(`^(CRON_)?TZ=`)
)

// validateTriggers checks each trigger on its own, as far as the standard
// library can judge it (cron syntax and route conflicts with other
// functions are judged by the server at deploy), and that no two of a
// function's triggers are the same or claim the same route.
func validateTriggers(ts []Trigger) error {
	ids := map[string]int{}
	for i, t := range ts {
		field := fmt.Sprintf("triggers[%d]", i)
		if n := t.kinds(); n != 1 {
			return Invalid(field, "declares %d kinds: want exactly one of http, topic, schedule, bucket, kv, event", n)
		}
		if err := t.validate(field + "." + string(t.Kind())); err != nil {
			return err
		}
		id := t.ID()
		if j, dup := ids[id]; dup {
			return Invalid("triggers", "entries %d and %d are the same trigger", j, i)
		}
		ids[id] = i
	}
	for i, a := range ts {
		for j := i + 1; j < len(ts); j++ {
			if b := ts[j]; a.HTTP != nil && b.HTTP != nil && a.HTTP.Path == b.HTTP.Path && MethodsOverlap(a.HTTP.Methods, b.HTTP.Methods) {
				return Invalid("triggers", "entries %d and %d both serve %s for the same methods", i, j, b.HTTP.Path)
			}
		}
	}
	return nil
}

func (t Trigger) validate(field string) error {
	switch {
	case t.HTTP != nil:
		return t.HTTP.validate(field)
	case t.Topic != nil:
		if n := t.Topic.Name; !topicNameRE.MatchString(n) || strings.HasPrefix(strings.ToLower(n), "goog") {
			return Invalid(field+".name", "%q: want a topic name: 3 to 255 letters, digits and - _ . ~ + %%, starting with a letter (not goog)", n)
		}
		if len(t.Topic.Filter) > 256 {
			return Invalid(field+".filter", "%d characters: want at most 256", len(t.Topic.Filter))
		}
	case t.Schedule != nil:
		s := t.Schedule
		if strings.TrimSpace(s.Cron) == "" {
			return Invalid(field+".cron", "is required")
		}
		if cronPrefixRE.MatchString(s.Cron) {
			return Invalid(field+".cron", "%q: give the time zone in the timezone field, not in the spec", s.Cron)
		}
		if _, err := ScheduleLocation(s.Timezone); err != nil {
			return Invalid(field+".timezone", "%v", err)
		}
	case t.Event != nil:
		if !eventTypeRE.MatchString(t.Event.Type) {
			return Invalid(field+".type", "%q: want 1 to 256 printable characters without spaces", t.Event.Type)
		}
		src := t.Event.Source
		if src != "" && (len(src) > 1024 || !eventSrcRE.MatchString(src) || strings.Contains(strings.TrimSuffix(src, "*"), "*")) {
			return Invalid(field+".source", "%q: want a URI reference of at most 1024 characters without spaces, optionally ending with * (a prefix)", src)
		}
	case t.Bucket != nil:
		if t.Bucket.Name == "" {
			return Invalid(field+".name", "is required")
		}
	case t.KV != nil:
		if t.KV.Bucket == "" {
			return Invalid(field+".bucket", "is required")
		}
	}
	return nil
}

func (h *HTTPTrigger) validate(field string) error {
	p := h.Path
	base, prefix := strings.CutSuffix(p, CatchAll)
	switch {
	case len(p) > 512:
		return Invalid(field+".path", "longer than 512 bytes")
	case p == "" || p[0] != '/':
		return Invalid(field+".path", "%q: want an absolute path, like /hooks/slack", p)
	case p == "/" || p == CatchAll:
		return Invalid(field+".path", "%q would serve every path, Duct's own included: want a path under /", p)
	case prefix && base == "":
		return Invalid(field+".path", "%q: want a path under /", p)
	case !routePathRE.MatchString(base):
		return Invalid(field+".path", "%q: want letters, digits, and - . _ ~ ! $ & ' ( ) + , ; = : @ between slashes; * only at the end, after a slash", p)
	case strings.Contains(base, "//") || strings.Contains(base+"/", "/./") || strings.Contains(base+"/", "/../"):
		return Invalid(field+".path", "%q: empty, . and .. segments are not allowed", p)
	}
	for _, r := range reservedPaths {
		if base == r || strings.HasPrefix(base, r+"/") {
			return Invalid(field+".path", "%q: %s and the paths under it are Duct's own", p, r)
		}
	}
	for i, m := range h.Methods {
		if !methodRE.MatchString(m) {
			return Invalid(field+".methods", "%q: want a method in upper case, like POST", m)
		}
		if slices.Contains(h.Methods[:i], m) {
			return Invalid(field+".methods", "%s is listed twice", m)
		}
	}
	return nil
}

// MethodsOverlap reports whether two HTTP triggers' method lists share a
// method; an empty list means every method.
func MethodsOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, m := range a {
		if slices.Contains(b, m) {
			return true
		}
	}
	return false
}

// ScheduleLocation is the time zone a schedule trigger's timezone names:
// UTC when empty, else an IANA name such as Europe/Paris. "Local" is
// refused: servers sharing a store may not agree on it.
func ScheduleLocation(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, fmt.Errorf("%q depends on the server: want an IANA name, like Europe/Paris or UTC", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not a known time zone: want an IANA name, like Europe/Paris or UTC", name)
	}
	return loc, nil
}

// CloudEvent is a CloudEvents 1.0 event: its context attributes and its
// data. Duct delivers every trigger's event to functions as one, in HTTP
// binary mode (docs/triggers.md).
type CloudEvent struct {
	SpecVersion string `json:"specversion"`
	ID          string `json:"id"`
	// Source is a URI reference naming the context the event happened
	// in; (Source, ID) identifies an event.
	Source  string    `json:"source"`
	Type    string    `json:"type"`
	Subject string    `json:"subject,omitempty"`
	Time    time.Time `json:"time,omitzero"`
	// DataContentType is the media type of Data; empty means JSON.
	DataContentType string `json:"datacontenttype,omitempty"`
	DataSchema      string `json:"dataschema,omitempty"`
	// Extensions holds the other attributes by name, as strings (their
	// canonical string form).
	Extensions map[string]string `json:"extensions,omitempty"`
	Data       []byte            `json:"data,omitempty"`
}

// CloudEventsVersion is the only spec version Duct reads and writes.
const CloudEventsVersion = "1.0"

// cloudEventAttrs are the attributes the specification defines (and
// "data", which no extension may be called either).
var cloudEventAttrs = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "subject": true, "time": true,
	"datacontenttype": true, "dataschema": true, "data": true, "data_base64": true,
}

var extNameRE = regexp.MustCompile(`^[a-z0-9]{1,64}$`)

// Validate checks the attributes CloudEvents 1.0 requires: specversion
// 1.0, a non-empty id, source and type, and extension names of lowercase
// letters and digits.
func (e *CloudEvent) Validate() error {
	switch {
	case e.SpecVersion != CloudEventsVersion:
		if e.SpecVersion == "" {
			return Invalid("specversion", "missing: want %s", CloudEventsVersion)
		}
		return Invalid("specversion", "%q: want %s", e.SpecVersion, CloudEventsVersion)
	case e.ID == "":
		return Invalid("id", "missing: every event needs an id, unique within its source")
	case e.Source == "":
		return Invalid("source", "missing: want a URI reference naming where the event happened")
	case e.Type == "":
		return Invalid("type", "missing: want the kind of event, like com.example.order.created")
	case strings.ContainsAny(e.Source, " \t\r\n"):
		return Invalid("source", "%q is not a URI reference", e.Source)
	}
	for k := range e.Extensions {
		if !extNameRE.MatchString(k) || cloudEventAttrs[k] {
			return Invalid("extension "+k, "want a name of lowercase letters and digits, not one the specification defines")
		}
	}
	return nil
}

// TriggerInfo describes one trigger of a function's serving version, as
// GET /api/v1/functions/{name}/triggers answers.
type TriggerInfo struct {
	// Index is the trigger's place in the function's list, from 0.
	Index int         `json:"index"`
	ID    string      `json:"id"`
	Kind  TriggerKind `json:"kind"`
	Trigger
	// Next is a schedule's next tick, as this node sees it.
	Next *time.Time `json:"next,omitempty"`
	// LastTick is the last tick a schedule fired (or claimed), from the
	// store.
	LastTick *time.Time `json:"lastTick,omitempty"`
	// LastInvocation is the asynchronous invocation of the last tick.
	LastInvocation string `json:"lastInvocation,omitempty"`
	// Subscription is the Pub/Sub subscription a topic trigger reads.
	Subscription string `json:"subscription,omitempty"`
	// Active is false when the server does not fire this kind of trigger
	// (bucket and kv triggers are recorded only, for now).
	Active bool `json:"active"`
}
