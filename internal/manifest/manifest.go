// Package manifest owns duct.yaml: parsing it, strictly, into a partial
// function spec that records which fields the file gave, and laying those
// fields over a duct.Function. Flags and defaults are the caller's: a
// Manifest only says what the file said.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/duct-dev/duct"
	"go.yaml.in/yaml/v3"
)

// MaxSize is the largest duct.yaml Parse reads.
const MaxSize = 64 << 10

// FileName is the manifest's name beside a function's source; errors
// cite it.
const FileName = "duct.yaml"

// Manifest is a parsed duct.yaml. A nil pointer, slice or map is a field
// the file left out; anything else was given, even if zero or empty
// (`secrets: []` clears the secrets, and `concurrency: 0` is an error,
// never a silent default).
type Manifest struct {
	Name         *string
	Runtime      *duct.Runtime
	Signature    *duct.Signature
	Handler      *string
	Entry        *string
	Command      []string
	Timeout      *duct.Duration
	Memory       *duct.ByteSize
	Concurrency  *int
	MinInstances *int
	MaxInstances *int
	IdleTimeout  *duct.Duration
	Env          map[string]string
	Secrets      []string
	Invoke       *duct.InvokeMode
	Network      *duct.NetworkMode
	Triggers     []duct.Trigger
	Retry        *Retry
}

// Retry is the retry block; its fields lay over the function's
// RetryPolicy one by one.
type Retry struct {
	Attempts    *int
	MaxEventAge *duct.Duration
	OnFailure   *string
	OnSuccess   *string
}

// Parse reads a duct.yaml. It is strict: unknown fields (with a
// suggestion for a likely misspelling), values of the wrong type, aliases,
// custom tags, duplicate keys, more than one YAML document and files over
// MaxSize are errors, and so are values a function could never take
// (`concurrency: 0`, `runtime: rust`, a trigger without its name). Errors
// match duct.ErrInvalid; as *duct.InvalidError their Field reads
// "duct.yaml:LINE: FIELD". An empty file is an empty Manifest, and a
// field left empty (`timeout:`) or null is a field not given.
//
// Durations are Go syntax with a unit ("30s", "5m"); sizes are byte
// counts or take a suffix ("256Mi", "1Gi", "512M").
func Parse(data []byte) (*Manifest, error) {
	if len(data) > MaxSize {
		return nil, errAt(0, "", "%d bytes: the limit is %d KiB", len(data), MaxSize>>10)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &Manifest{}, nil
		}
		return nil, syntaxError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(err)
	default:
		return nil, errAt(next.Line, "", "a second YAML document: %s holds one", FileName)
	}
	d := &decoder{lines: map[string]int{}}
	m, err := d.manifest(&doc)
	if err != nil {
		return nil, err
	}
	if err := m.validate(d.lines); err != nil {
		return nil, err
	}
	return m, nil
}

// errAt returns an error about field (a path such as "triggers[0].http",
// or "" for the file) at line (0 if unknown).
func errAt(line int, field, format string, args ...any) error {
	where := FileName
	if line > 0 {
		where += ":" + strconv.Itoa(line)
	}
	if field != "" {
		where += ": " + field
	}
	return &duct.InvalidError{Field: where, Reason: fmt.Sprintf(format, args...)}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError rewrites the YAML library's errors in the package's form.
func syntaxError(err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return errAt(line, "", "%s", m[2])
	}
	return errAt(0, "", "%s", strings.TrimPrefix(msg, "yaml: "))
}
