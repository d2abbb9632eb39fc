package duct

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Runtime says how a function's source is built and run.
type Runtime string

const (
	RuntimeGo     Runtime = "go"
	RuntimeNode   Runtime = "node"
	RuntimePython Runtime = "python"
	// RuntimeImage is a container image or any program serving HTTP on
	// $PORT (containers as a service).
	RuntimeImage Runtime = "image"
)

// Runtimes lists the runtimes a function may name.
var Runtimes = []Runtime{RuntimeGo, RuntimeNode, RuntimePython, RuntimeImage}

// Signature is the shape of a function's handler.
type Signature string

const (
	// SignatureHTTP handlers see the HTTP request and write the response.
	SignatureHTTP Signature = "http"
	// SignatureEvent handlers take an event and return a result: over
	// HTTP the JSON body is the event and the result the JSON response;
	// from a trigger the event is a CloudEvent.
	SignatureEvent Signature = "event"
)

// InvokeMode says who may invoke a function through the gateway.
type InvokeMode string

const (
	InvokePublic InvokeMode = "public"
	InvokeToken  InvokeMode = "token"
)

// NetworkMode says what network a function's instances get.
type NetworkMode string

const (
	// NetworkNone: an own network namespace with loopback only.
	NetworkNone NetworkMode = "none"
	// NetworkOutbound: the host's network stack, to call other services.
	NetworkOutbound NetworkMode = "outbound"
)

// Function is a function's specification: everything a user declares in
// duct.yaml or with CLI flags. A Version freezes one Function with the
// artifact built from its source.
type Function struct {
	Name      string    `json:"name"`
	Runtime   Runtime   `json:"runtime,omitempty"`
	Signature Signature `json:"signature,omitempty"`
	// Handler is the entry point's name: "Handle" for Go, "handler" for
	// Node.js and Python.
	Handler string `json:"handler,omitempty"`
	// Entry is the source file holding the handler (Node.js, Python),
	// relative to the bundle root; detected when empty.
	Entry string `json:"entry,omitempty"`
	// Command runs a program that serves HTTP on $PORT itself (bring your
	// own server); argv[0] is relative to the artifact root.
	Command []string `json:"command,omitempty"`

	Timeout      Duration          `json:"timeout,omitempty"`
	Memory       ByteSize          `json:"memory,omitempty"`
	Concurrency  int               `json:"concurrency,omitempty"`
	MinInstances int               `json:"minInstances,omitempty"`
	MaxInstances int               `json:"maxInstances,omitempty"`
	IdleTimeout  Duration          `json:"idleTimeout,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	Secrets      []string          `json:"secrets,omitempty"`
	Invoke       InvokeMode        `json:"invoke,omitempty"`
	// Network is what the function's sandbox may reach: NetworkNone
	// (loopback only, the default) or NetworkOutbound.
	Network  NetworkMode  `json:"network,omitempty"`
	Triggers []Trigger    `json:"triggers,omitempty"`
	Retry    *RetryPolicy `json:"retry,omitempty"`
}

// Trigger is one event source bound to a function. Exactly one field is set.
type Trigger struct {
	HTTP     *HTTPTrigger     `json:"http,omitempty" yaml:"http,omitempty"`
	Topic    *TopicTrigger    `json:"topic,omitempty" yaml:"topic,omitempty"`
	Schedule *ScheduleTrigger `json:"schedule,omitempty" yaml:"schedule,omitempty"`
	Bucket   *BucketTrigger   `json:"bucket,omitempty" yaml:"bucket,omitempty"`
	KV       *KVTrigger       `json:"kv,omitempty" yaml:"kv,omitempty"`
	Event    *EventTrigger    `json:"event,omitempty" yaml:"event,omitempty"`
}

type HTTPTrigger struct {
	Path    string   `json:"path" yaml:"path"`
	Methods []string `json:"methods,omitempty" yaml:"methods,omitempty"`
}

type TopicTrigger struct {
	Name   string `json:"name" yaml:"name"`
	Filter string `json:"filter,omitempty" yaml:"filter,omitempty"`
}

type ScheduleTrigger struct {
	Cron     string `json:"cron" yaml:"cron"`
	Timezone string `json:"timezone,omitempty" yaml:"timezone,omitempty"`
}

type BucketTrigger struct {
	Name   string   `json:"name" yaml:"name"`
	Events []string `json:"events,omitempty" yaml:"events,omitempty"`
}

type KVTrigger struct {
	Bucket string `json:"bucket" yaml:"bucket"`
	Key    string `json:"key,omitempty" yaml:"key,omitempty"`
}

type EventTrigger struct {
	Type   string `json:"type" yaml:"type"`
	Source string `json:"source,omitempty" yaml:"source,omitempty"`
}

// RetryPolicy governs asynchronous invocations.
type RetryPolicy struct {
	Attempts    *int     `json:"attempts,omitempty" yaml:"attempts,omitempty"`
	MaxEventAge Duration `json:"maxEventAge,omitempty" yaml:"maxEventAge,omitempty"`
	OnFailure   string   `json:"onFailure,omitempty" yaml:"onFailure,omitempty"`
	OnSuccess   string   `json:"onSuccess,omitempty" yaml:"onSuccess,omitempty"`
}

// Defaults and bounds from the brief. The server may narrow the bounds.
const (
	DefaultTimeout          = Duration(60 * time.Second)
	MaxTimeout              = Duration(60 * time.Minute)
	DefaultMemory           = 256 * MiB
	MinMemory               = 64 * MiB // a sandboxed interpreter and its supervisor need about 30
	DefaultConcurrency      = 1
	DefaultImageConcurrency = 80
	MaxConcurrency          = 1000
	DefaultMaxInstances     = 100
	DefaultIdleTimeout      = Duration(5 * time.Minute)
	MaxSyncBody             = 6 * MiB
)

var (
	nameRE    = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	envKeyRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	handlerRE = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]{0,127}$`)
	entryRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,254}$`)
)

// reservedNames cannot be function names: they collide with Duct's own
// routes, tooling or conventions.
var reservedNames = map[string]bool{
	"api": true, "fn": true, "duct": true, "metrics": true, "healthz": true,
	"readyz": true, "openapi": true, "admin": true, "system": true, "internal": true,
}

// ValidateName reports whether name can name a function (or topic, or
// secret): a lowercase DNS label of at most 63 characters, not reserved.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) || strings.HasSuffix(name, "-") || strings.Contains(name, "--") {
		return Invalid("name", "%q: use 1-63 lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen", name)
	}
	if reservedNames[name] {
		return Invalid("name", "%q is reserved", name)
	}
	return nil
}

// reservedEnv may not be set by a function: the platform owns them.
var reservedEnv = map[string]bool{"PORT": true, "PATH": true, "HOME": true}

// WithDefaults returns f with every unset knob given its default.
func (f Function) WithDefaults() Function {
	if f.Signature == "" {
		f.Signature = SignatureHTTP
	}
	if f.Handler == "" && len(f.Command) == 0 {
		switch f.Runtime {
		case RuntimeGo:
			f.Handler = "Handle"
		case RuntimeNode, RuntimePython:
			f.Handler = "handler"
		}
	}
	if f.Timeout == 0 {
		f.Timeout = DefaultTimeout
	}
	if f.Memory == 0 {
		f.Memory = DefaultMemory
	}
	if f.Concurrency == 0 {
		f.Concurrency = DefaultConcurrency
		if f.Runtime == RuntimeImage {
			f.Concurrency = DefaultImageConcurrency
		}
	}
	if f.MaxInstances == 0 {
		f.MaxInstances = DefaultMaxInstances
	}
	if f.IdleTimeout == 0 {
		f.IdleTimeout = DefaultIdleTimeout
	}
	if f.Invoke == "" {
		f.Invoke = InvokePublic
	}
	if f.Network == "" {
		f.Network = NetworkNone
	}
	return f
}

// Validate checks a function spec after defaults are applied.
func (f Function) Validate() error {
	if err := ValidateName(f.Name); err != nil {
		return err
	}
	if !knownRuntime(f.Runtime) {
		return Invalid("runtime", "%q: want one of %s", f.Runtime, runtimeList())
	}
	switch f.Signature {
	case SignatureHTTP, SignatureEvent:
	default:
		return Invalid("signature", "%q: want http or event", f.Signature)
	}
	if len(f.Command) == 0 && f.Runtime != RuntimeImage && !handlerRE.MatchString(f.Handler) {
		return Invalid("handler", "%q is not an identifier", f.Handler)
	}
	if f.Entry != "" && (!entryRE.MatchString(f.Entry) || strings.Contains(f.Entry, "..")) {
		return Invalid("entry", "%q: want a relative path inside the source", f.Entry)
	}
	if len(f.Command) > 0 && f.Runtime != RuntimeImage {
		return Invalid("command", "applies to runtime image only (a program serving $PORT); a %s function is built from its source", f.Runtime)
	}
	for i, a := range f.Command {
		if a == "" || strings.ContainsRune(a, 0) {
			return Invalid("command", "argument %d is empty or holds a NUL byte", i)
		}
	}
	if f.Timeout <= 0 || f.Timeout > MaxTimeout {
		return Invalid("timeout", "%s: want more than 0 and at most %s", f.Timeout, MaxTimeout)
	}
	if f.Memory < MinMemory {
		return Invalid("memory", "%s: want at least %s", f.Memory, MinMemory)
	}
	if f.Concurrency < 1 || f.Concurrency > MaxConcurrency {
		return Invalid("concurrency", "%d: want 1 to %d", f.Concurrency, MaxConcurrency)
	}
	if f.MaxInstances < 1 {
		return Invalid("maxInstances", "%d: want at least 1", f.MaxInstances)
	}
	if f.MinInstances < 0 || f.MinInstances > f.MaxInstances {
		return Invalid("minInstances", "%d: want 0 to maxInstances (%d)", f.MinInstances, f.MaxInstances)
	}
	if f.IdleTimeout < Duration(time.Second) {
		return Invalid("idleTimeout", "%s: want at least 1s", f.IdleTimeout)
	}
	switch f.Invoke {
	case InvokePublic, InvokeToken:
	default:
		return Invalid("invoke", "%q: want public or token", f.Invoke)
	}
	switch f.Network {
	case NetworkNone, NetworkOutbound:
	default:
		return Invalid("network", "%q: want none or outbound", f.Network)
	}
	for k, v := range f.Env {
		if !envKeyRE.MatchString(k) {
			return Invalid("env", "%q is not a valid variable name", k)
		}
		if reservedEnv[k] || strings.HasPrefix(k, "DUCT_") {
			return Invalid("env", "%q is reserved for the platform", k)
		}
		if strings.ContainsRune(v, 0) || len(v) > 32<<10 {
			return Invalid("env", "value of %q holds a NUL byte or exceeds 32 KiB", k)
		}
	}
	seen := make(map[string]bool, len(f.Secrets))
	for _, s := range f.Secrets {
		if why := secretNameProblem(s); why != "" {
			return Invalid("secrets", "%s", why)
		}
		if seen[s] {
			return Invalid("secrets", "%q is listed twice", s)
		}
		seen[s] = true
		if _, ok := f.Env[s]; ok {
			return Invalid("secrets", "%q is also set in env: a secret becomes the variable of its name", s)
		}
	}
	for i, t := range f.Triggers {
		if n := t.kinds(); n != 1 {
			return Invalid("triggers", "entry %d declares %d kinds: want exactly one", i, n)
		}
	}
	if err := f.Retry.validate(); err != nil {
		return err
	}
	return validateTriggers(f.Triggers)
}

func (t Trigger) kinds() int {
	n := 0
	for _, set := range []bool{t.HTTP != nil, t.Topic != nil, t.Schedule != nil, t.Bucket != nil, t.KV != nil, t.Event != nil} {
		if set {
			n++
		}
	}
	return n
}

func knownRuntime(r Runtime) bool {
	for _, k := range Runtimes {
		if r == k {
			return true
		}
	}
	return false
}

func runtimeList() string {
	s := make([]string, len(Runtimes))
	for i, r := range Runtimes {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// EnvKeys returns f.Env's keys in order, for stable output.
func (f Function) EnvKeys() []string {
	keys := make([]string, 0, len(f.Env))
	for k := range f.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// String names the function for logs.
func (f Function) String() string { return fmt.Sprintf("%s (%s)", f.Name, f.Runtime) }

// MaxRetryAttempts bounds a retry policy's attempts.
const MaxRetryAttempts = 100

func (r *RetryPolicy) validate() error {
	if r == nil {
		return nil
	}
	if r.Attempts != nil && (*r.Attempts < 0 || *r.Attempts > MaxRetryAttempts) {
		return Invalid("retry.attempts", "%d: want 0 to %d", *r.Attempts, MaxRetryAttempts)
	}
	// Below MinMaxEventAge the age is raised to it when invocations run
	// (tests shorten it); above the maximum it is refused.
	if r.MaxEventAge < 0 || r.MaxEventAge > MaxMaxEventAge {
		return Invalid("retry.maxEventAge", "%s: want at most %s", r.MaxEventAge, MaxMaxEventAge)
	}
	for field, topic := range map[string]string{"retry.onFailure": r.OnFailure, "retry.onSuccess": r.OnSuccess} {
		if topic != "" && (len(topic) > 255 || strings.ContainsAny(topic, " /\t\n\x00")) {
			return Invalid(field, "%q is not a topic name", topic)
		}
	}
	return nil
}
