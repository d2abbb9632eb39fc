package manifest

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/duct-dev/duct"
	"go.yaml.in/yaml/v3"
)

// decoder walks the YAML node tree by hand: that is what gives every
// error its line, and lets Parse refuse what a struct decoder would
// quietly accept.
type decoder struct {
	// lines maps each field path given ("timeout", "env.LOG_LEVEL",
	// "triggers[1]") to its line, for validate's messages.
	lines map[string]int
}

// field is one key and value of a mapping.
type field struct {
	key string
	val *yaml.Node
}

var topFields = []string{
	"name", "runtime", "signature", "handler", "entry", "command",
	"timeout", "memory", "concurrency", "minInstances", "maxInstances", "idleTimeout",
	"env", "secrets", "invoke", "network", "triggers", "retry",
}

func (d *decoder) manifest(doc *yaml.Node) (*Manifest, error) {
	m := &Manifest{}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return m, nil
	}
	fields, err := d.mapping(doc.Content[0], "", topFields)
	if err != nil {
		return nil, err
	}
	for _, f := range fields {
		if err := d.topField(m, f); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (d *decoder) topField(m *Manifest, f field) error {
	var err error
	k, n := f.key, f.val
	switch k {
	case "name":
		m.Name, err = d.str(n, k)
	case "runtime":
		m.Runtime, err = strAs[duct.Runtime](d, n, k)
	case "signature":
		m.Signature, err = strAs[duct.Signature](d, n, k)
	case "handler":
		m.Handler, err = d.str(n, k)
	case "entry":
		m.Entry, err = d.str(n, k)
	case "command":
		m.Command, err = d.list(n, k)
	case "timeout":
		m.Timeout, err = d.duration(n, k)
	case "memory":
		m.Memory, err = d.size(n, k)
	case "concurrency":
		m.Concurrency, err = d.integer(n, k)
	case "minInstances":
		m.MinInstances, err = d.integer(n, k)
	case "maxInstances":
		m.MaxInstances, err = d.integer(n, k)
	case "idleTimeout":
		m.IdleTimeout, err = d.duration(n, k)
	case "env":
		m.Env, err = d.env(n, k)
	case "secrets":
		m.Secrets, err = d.list(n, k)
	case "invoke":
		m.Invoke, err = strAs[duct.InvokeMode](d, n, k)
	case "network":
		m.Network, err = strAs[duct.NetworkMode](d, n, k)
	case "triggers":
		m.Triggers, err = d.triggers(n, k)
	case "retry":
		m.Retry, err = d.retry(n, k)
	}
	return err
}

// mapping checks that n is a mapping whose keys are known, and returns its
// fields in order, null values left out (a null value is a field not
// given).
func (d *decoder) mapping(n *yaml.Node, path string, known []string) ([]field, error) {
	if err := d.want(n, path, yaml.MappingNode, "a mapping of fields"); err != nil {
		return nil, err
	}
	var out []field
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, v := n.Content[i], n.Content[i+1]
		key, err := d.key(kn, path)
		if err != nil {
			return nil, err
		}
		if first, ok := seen[key]; ok {
			return nil, errAt(kn.Line, path, "field %q given twice (first on line %d)", key, first)
		}
		seen[key] = kn.Line
		if !slices.Contains(known, key) {
			return nil, errAt(kn.Line, path, "%s", unknown(key, known))
		}
		if v.Kind == yaml.AliasNode {
			return nil, errAt(v.Line, join(path, key), "aliases are not supported")
		}
		if isNull(v) {
			continue
		}
		d.lines[join(path, key)] = v.Line
		out = append(out, field{key, v})
	}
	return out, nil
}

func (d *decoder) key(kn *yaml.Node, path string) (string, error) {
	if kn.Kind == yaml.ScalarNode && kn.Tag == "!!merge" {
		return "", errAt(kn.Line, path, "merge keys (<<) are not supported")
	}
	key, null, err := d.scalar(kn, path, "a field name")
	if err == nil && null {
		err = errAt(kn.Line, path, "null field name")
	}
	return key, err
}

// unknown explains an unknown field, with a suggestion when one of the
// known names is close.
func unknown(key string, known []string) string {
	shown := key
	if len(shown) > 64 {
		shown = shown[:64] + "..."
	}
	msg := fmt.Sprintf("unknown field %q", shown)
	if s := suggest(key, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

var kinds = map[yaml.Kind]string{
	yaml.DocumentNode: "a document",
	yaml.SequenceNode: "a list",
	yaml.MappingNode:  "a mapping",
	yaml.ScalarNode:   "a scalar",
	yaml.AliasNode:    "an alias",
}

// want checks n's kind; what describes the expected value.
func (d *decoder) want(n *yaml.Node, path string, k yaml.Kind, what string) error {
	switch {
	case n.Kind == k:
		return nil
	case n.Kind == yaml.AliasNode:
		return errAt(n.Line, path, "aliases are not supported")
	case n.Kind == yaml.ScalarNode:
		return errAt(n.Line, path, "want %s, got %s", what, describe(n))
	}
	return errAt(n.Line, path, "want %s, got %s", what, kinds[n.Kind])
}

// describe names a scalar's value and type for messages.
func describe(n *yaml.Node) string {
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	switch n.ShortTag() {
	case "!!int":
		return "the integer " + v
	case "!!float":
		return "the number " + v
	case "!!bool":
		return "the boolean " + v
	case "!!null":
		return "null"
	}
	return strconv.Quote(v)
}

// scalar returns a scalar's text as written. Plain YAML types (strings,
// numbers, booleans, timestamps) are accepted as text; custom and binary
// tags are not.
func (d *decoder) scalar(n *yaml.Node, path, what string) (text string, null bool, err error) {
	if err := d.want(n, path, yaml.ScalarNode, what); err != nil {
		return "", false, err
	}
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return "", true, nil
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
	default:
		return "", false, errAt(n.Line, path, "tag %s is not supported", tag)
	}
	if !utf8.ValidString(n.Value) {
		return "", false, errAt(n.Line, path, "not valid UTF-8")
	}
	return n.Value, false, nil
}

func (d *decoder) str(n *yaml.Node, path string) (*string, error) {
	s, _, err := d.scalar(n, path, "a string")
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func strAs[T ~string](d *decoder, n *yaml.Node, path string) (*T, error) {
	s, err := d.str(n, path)
	if err != nil {
		return nil, err
	}
	v := T(*s)
	return &v, nil
}

var digits = regexp.MustCompile(`^[-+]?[0-9]+$`)

func (d *decoder) integer(n *yaml.Node, path string) (*int, error) {
	if _, _, err := d.scalar(n, path, "an integer"); err != nil {
		return nil, err
	}
	if n.ShortTag() != "!!int" {
		if n.ShortTag() == "!!float" && digits.MatchString(n.Value) {
			// YAML takes an integer too large for 64 bits as a float.
			return nil, errAt(n.Line, path, "integer %s out of range", n.Value)
		}
		return nil, errAt(n.Line, path, "want an integer, got %s", describe(n))
	}
	var v int64
	if err := n.Decode(&v); err != nil || v < math.MinInt32 || v > math.MaxInt32 {
		return nil, errAt(n.Line, path, "integer %s out of range", n.Value)
	}
	i := int(v)
	return &i, nil
}

// duration takes Go syntax, with a unit: a bare number is ambiguous (30
// what?), and refused.
func (d *decoder) duration(n *yaml.Node, path string) (*duct.Duration, error) {
	s, _, err := d.scalar(n, path, "a duration")
	if err != nil {
		return nil, err
	}
	if v, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && v != 0 {
		return nil, errAt(n.Line, path, "duration %q has no unit: want Go syntax such as 30s, 5m or 1h30m", s)
	}
	v, err := duct.ParseDuration(s)
	if err != nil {
		return nil, errAt(n.Line, path, "%v", err)
	}
	return &v, nil
}

func (d *decoder) size(n *yaml.Node, path string) (*duct.ByteSize, error) {
	s, _, err := d.scalar(n, path, "a size")
	if err != nil {
		return nil, err
	}
	v, err := duct.ParseByteSize(s)
	if err != nil {
		return nil, errAt(n.Line, path, "%v", err)
	}
	return &v, nil
}

// list reads a list of strings; it is empty, not nil, for [].
func (d *decoder) list(n *yaml.Node, path string) ([]string, error) {
	if err := d.want(n, path, yaml.SequenceNode, "a list of strings"); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		p := index(path, i)
		s, null, err := d.scalar(item, p, "a string")
		if err != nil {
			return nil, err
		}
		if null {
			return nil, errAt(item.Line, p, `null item: write "" for an empty string`)
		}
		d.lines[p] = item.Line
		out = append(out, s)
	}
	return out, nil
}

func (d *decoder) env(n *yaml.Node, path string) (map[string]string, error) {
	if err := d.want(n, path, yaml.MappingNode, "a mapping of variable names to values"); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, v := n.Content[i], n.Content[i+1]
		key, err := d.key(kn, path)
		if err != nil {
			return nil, err
		}
		p := path + "." + key
		if _, dup := out[key]; dup {
			return nil, errAt(kn.Line, path, "variable %q given twice", key)
		}
		s, null, err := d.scalar(v, p, "a string")
		if err != nil {
			return nil, err
		}
		if null {
			return nil, errAt(v.Line, p, `null value: write "" for an empty string`)
		}
		d.lines[p] = kn.Line
		out[key] = s
	}
	return out, nil
}

func (d *decoder) retry(n *yaml.Node, path string) (*Retry, error) {
	fields, err := d.mapping(n, path, []string{"attempts", "maxEventAge", "onFailure", "onSuccess"})
	if err != nil {
		return nil, err
	}
	r := &Retry{}
	for _, f := range fields {
		p := join(path, f.key)
		switch f.key {
		case "attempts":
			r.Attempts, err = d.integer(f.val, p)
		case "maxEventAge":
			r.MaxEventAge, err = d.duration(f.val, p)
		case "onFailure":
			r.OnFailure, err = d.str(f.val, p)
		case "onSuccess":
			r.OnSuccess, err = d.str(f.val, p)
		}
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
