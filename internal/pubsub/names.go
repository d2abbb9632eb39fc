package pubsub

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/duct-dev/duct"
)

// checkName applies Google's rules for topic and subscription names:
// 3 to 255 characters, starting with a letter, made of letters, digits
// and - _ . ~ + %, and not starting with "goog".
func checkName(kind, name string) error {
	switch {
	case len(name) < MinNameLength || len(name) > MaxNameLength:
		return duct.Invalid(kind+" name", "%q: want %d to %d characters", name, MinNameLength, MaxNameLength)
	case !isLetter(name[0]):
		return duct.Invalid(kind+" name", "%q: must start with a letter", name)
	case strings.HasPrefix(strings.ToLower(name), "goog"):
		return duct.Invalid(kind+" name", "%q: names starting with \"goog\" are reserved", name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isNameChar(c) {
			return duct.Invalid(kind+" name", "%q: character %q at %d is not allowed (letters, digits and - _ . ~ + %% only)", name, rune(c), i)
		}
	}
	return nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isNameChar(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || strings.IndexByte("-_.~+%", c) >= 0
}

// kvKey turns a valid name into a KV key: letters, digits, - and _ stay,
// every other byte becomes =XX (KV keys allow neither ~ + % nor leading
// or doubled dots). The mapping is one to one.
func kvKey(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isLetter(c) || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "=%02X", c)
	}
	return b.String()
}

// Label limits (Google's): at most 64 labels; keys 1 to 63 characters
// starting with a lowercase letter; keys and values of lowercase letters,
// digits, - and _.
const (
	maxLabels   = 64
	maxLabelLen = 63
)

func checkLabels(labels map[string]string) error {
	if len(labels) > maxLabels {
		return duct.Invalid("labels", "%d labels: at most %d", len(labels), maxLabels)
	}
	for k, v := range labels {
		if k == "" || len(k) > maxLabelLen || !(k[0] >= 'a' && k[0] <= 'z') || !labelChars(k) {
			return duct.Invalid("labels", "key %q: want 1 to %d lowercase letters, digits, - or _, starting with a letter", k, maxLabelLen)
		}
		if len(v) > maxLabelLen || !labelChars(v) {
			return duct.Invalid("labels", "value %q of %q: want up to %d lowercase letters, digits, - or _", v, k, maxLabelLen)
		}
	}
	return nil
}

func labelChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// messageSize is what counts against MaxMessageSize: data, attribute
// keys and values, and the ordering key.
func messageSize(m *Message) int {
	n := len(m.Data) + len(m.OrderingKey)
	for k, v := range m.Attributes {
		n += len(k) + len(v)
	}
	return n
}

// checkMessages validates a Publish request against Google's limits.
func checkMessages(msgs []Message) error {
	switch {
	case len(msgs) == 0:
		return duct.Invalid("messages", "a publish needs at least one message")
	case len(msgs) > MaxPublishBatch:
		return fmt.Errorf("%d messages in one publish: at most %d: %w", len(msgs), MaxPublishBatch, duct.ErrTooLarge)
	}
	total := 0
	for i := range msgs {
		m := &msgs[i]
		size := messageSize(m)
		if size > MaxMessageSize {
			return fmt.Errorf("message %d is %d bytes (data, attributes and ordering key): at most %d: %w", i, size, MaxMessageSize, duct.ErrTooLarge)
		}
		total += size
		if len(m.Data) == 0 && len(m.Attributes) == 0 {
			return duct.Invalid(fmt.Sprintf("message %d", i), "needs data or at least one attribute")
		}
		if len(m.OrderingKey) > MaxOrderingKey {
			return duct.Invalid(fmt.Sprintf("message %d", i), "ordering key of %d bytes: at most %d", len(m.OrderingKey), MaxOrderingKey)
		}
		if !utf8.ValidString(m.OrderingKey) {
			return duct.Invalid(fmt.Sprintf("message %d", i), "ordering key is not valid UTF-8")
		}
		if err := checkAttributes(i, m.Attributes); err != nil {
			return err
		}
	}
	if total > MaxPublishBytes {
		return fmt.Errorf("publish of %d bytes: at most %d per request: %w", total, MaxPublishBytes, duct.ErrTooLarge)
	}
	return nil
}

func checkAttributes(i int, attrs map[string]string) error {
	field := fmt.Sprintf("message %d", i)
	if len(attrs) > MaxAttributes {
		return duct.Invalid(field, "%d attributes: at most %d", len(attrs), MaxAttributes)
	}
	for k, v := range attrs {
		switch {
		case k == "":
			return duct.Invalid(field, "attribute with an empty key")
		case len(k) > MaxAttributeKey:
			return duct.Invalid(field, "attribute key of %d bytes: at most %d", len(k), MaxAttributeKey)
		case len(v) > MaxAttributeValue:
			return duct.Invalid(field, "attribute %q has a value of %d bytes: at most %d", k, len(v), MaxAttributeValue)
		case strings.HasPrefix(strings.ToLower(k), "goog"):
			return duct.Invalid(field, "attribute key %q: keys starting with \"goog\" are reserved", k)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return duct.Invalid(field, "attribute %q is not valid UTF-8", k)
		}
	}
	return nil
}
