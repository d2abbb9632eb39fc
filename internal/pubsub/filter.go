package pubsub

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/duct-dev/duct"
)

// Filter is a parsed subscription filter in Google's syntax:
//
//	attributes:KEY                     the message has attribute KEY
//	attributes.KEY = "v"               it has KEY with value v
//	attributes.KEY != "v"              it does not (NOT of =)
//	hasPrefix(attributes.KEY, "p")     it has KEY with a value starting with p
//	NOT x, -x, x AND y, x OR y, (x)
//
// KEY is letters, digits, - and _, or a string literal for anything else.
// Strings are in double or single quotes with C-style escapes (\n, \",
// \xHH, \uHHHH, octal). AND and OR may not be mixed without parentheses,
// as with Google. The zero Filter (an empty expression) matches every
// message.
type Filter struct {
	root *fnode
}

type fop uint8

const (
	opHas fop = iota
	opEq
	opNe
	opPrefix
	opNot
	opAnd
	opOr
)

type fnode struct {
	op       fop
	key, val string
	kids     []*fnode
}

// maxFilterDepth bounds nesting so that evaluation cannot recurse deeply;
// 256 bytes cannot nest much further anyway.
const maxFilterDepth = 64

// ParseFilter parses a filter expression; errors wrap duct.ErrInvalid and
// say where the expression went wrong.
func ParseFilter(s string) (Filter, error) {
	if len(s) > MaxFilterLength {
		return Filter{}, duct.Invalid("filter", "%d bytes: at most %d", len(s), MaxFilterLength)
	}
	p := &fparser{src: s}
	p.space()
	if p.eof() {
		return Filter{}, nil
	}
	n, err := p.expr(0)
	if err != nil {
		return Filter{}, err
	}
	p.space()
	if !p.eof() {
		return Filter{}, p.errorf("unexpected %s", p.near())
	}
	return Filter{root: n}, nil
}

// Match reports whether a message with these attributes passes.
func (f Filter) Match(attrs map[string]string) bool {
	return f.root == nil || f.root.eval(attrs)
}

// Empty reports whether f matches everything.
func (f Filter) Empty() bool { return f.root == nil }

func (n *fnode) eval(attrs map[string]string) bool {
	switch n.op {
	case opHas:
		_, ok := attrs[n.key]
		return ok
	case opEq:
		v, ok := attrs[n.key]
		return ok && v == n.val
	case opNe:
		v, ok := attrs[n.key]
		return !ok || v != n.val
	case opPrefix:
		v, ok := attrs[n.key]
		return ok && strings.HasPrefix(v, n.val)
	case opNot:
		return !n.kids[0].eval(attrs)
	case opAnd:
		for _, k := range n.kids {
			if !k.eval(attrs) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if k.eval(attrs) {
				return true
			}
		}
		return false
	}
	return false
}

// fparser is a recursive-descent parser working on the source directly:
// the lexing depends on where it is (a - negates before a term but
// belongs to a key).
type fparser struct {
	src string
	pos int
}

func (p *fparser) eof() bool { return p.pos >= len(p.src) }

func (p *fparser) errorf(format string, args ...any) error {
	return duct.Invalid("filter", "at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

// near describes what is at the current position, for errors.
func (p *fparser) near() string {
	if p.eof() {
		return "end of filter"
	}
	rest := p.src[p.pos:]
	if len(rest) > 12 {
		rest = rest[:12] + "…"
	}
	return strconv.Quote(rest)
}

func (p *fparser) space() {
	for !p.eof() {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// keyword reports whether word (AND, OR, NOT) is at the current position
// as a whole word, and consumes it if so.
func (p *fparser) keyword(word string) bool {
	if !strings.HasPrefix(p.src[p.pos:], word) {
		return false
	}
	end := p.pos + len(word)
	if end < len(p.src) && isIdentChar(p.src[end]) {
		return false
	}
	p.pos = end
	return true
}

func isIdentChar(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// expr := term { (AND | OR) term }, all joined by the same operator.
func (p *fparser) expr(depth int) (*fnode, error) {
	if depth > maxFilterDepth {
		return nil, p.errorf("nested too deeply")
	}
	first, err := p.term(depth)
	if err != nil {
		return nil, err
	}
	var join *fnode
	for {
		p.space()
		start := p.pos
		var op fop
		switch {
		case p.keyword("AND"):
			op = opAnd
		case p.keyword("OR"):
			op = opOr
		default:
			if join == nil {
				return first, nil
			}
			return join, nil
		}
		if join == nil {
			join = &fnode{op: op, kids: []*fnode{first}}
		} else if join.op != op {
			p.pos = start
			return nil, p.errorf("AND and OR cannot be mixed without parentheses")
		}
		if !p.needSpaceAfterKeyword() {
			return nil, p.errorf("expected a space after %s", map[fop]string{opAnd: "AND", opOr: "OR"}[op])
		}
		next, err := p.term(depth)
		if err != nil {
			return nil, err
		}
		join.kids = append(join.kids, next)
	}
}

// needSpaceAfterKeyword allows "AND(" and "AND -x" but not "ANDx" (which
// keyword already refused) : after a keyword comes space or a parenthesis.
func (p *fparser) needSpaceAfterKeyword() bool {
	if p.eof() {
		return true // the term reports the missing operand
	}
	c := p.src[p.pos]
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '('
}

// term := [NOT | -] primary
func (p *fparser) term(depth int) (*fnode, error) {
	p.space()
	if p.eof() {
		return nil, p.errorf("expected a condition, found the end of the filter")
	}
	if p.src[p.pos] == '-' {
		p.pos++
		if p.eof() || p.src[p.pos] == ' ' {
			return nil, p.errorf("- must be followed directly by a condition")
		}
		if depth > maxFilterDepth {
			return nil, p.errorf("nested too deeply")
		}
		k, err := p.term(depth + 1)
		if err != nil {
			return nil, err
		}
		return &fnode{op: opNot, kids: []*fnode{k}}, nil
	}
	if p.keyword("NOT") {
		if !p.needSpaceAfterKeyword() {
			return nil, p.errorf("expected a space after NOT")
		}
		if depth > maxFilterDepth {
			return nil, p.errorf("nested too deeply")
		}
		k, err := p.term(depth + 1)
		if err != nil {
			return nil, err
		}
		return &fnode{op: opNot, kids: []*fnode{k}}, nil
	}
	return p.primary(depth)
}

// primary := ( expr ) | attributes:KEY | attributes.KEY (= | !=) STRING
//
//	| hasPrefix ( attributes.KEY , STRING )
func (p *fparser) primary(depth int) (*fnode, error) {
	p.space()
	switch {
	case p.eof():
		return nil, p.errorf("expected a condition, found the end of the filter")
	case p.src[p.pos] == '(':
		p.pos++
		n, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		p.space()
		if p.eof() || p.src[p.pos] != ')' {
			return nil, p.errorf("expected ) but found %s", p.near())
		}
		p.pos++
		return n, nil
	case p.keyword("hasPrefix"):
		return p.hasPrefix()
	case p.keyword("attributes"):
		p.space()
		if p.eof() {
			return nil, p.errorf("expected : or . after attributes")
		}
		switch p.src[p.pos] {
		case ':':
			p.pos++
			key, err := p.key()
			if err != nil {
				return nil, err
			}
			return &fnode{op: opHas, key: key}, nil
		case '.':
			p.pos++
			key, err := p.key()
			if err != nil {
				return nil, err
			}
			p.space()
			var op fop
			switch {
			case strings.HasPrefix(p.src[p.pos:], "!="):
				op = opNe
				p.pos += 2
			case strings.HasPrefix(p.src[p.pos:], "="):
				op = opEq
				p.pos++
			default:
				return nil, p.errorf("expected = or != after attributes.%s, found %s", key, p.near())
			}
			val, err := p.str()
			if err != nil {
				return nil, err
			}
			return &fnode{op: op, key: key, val: val}, nil
		}
		return nil, p.errorf("expected : or . after attributes, found %s", p.near())
	}
	return nil, p.errorf("expected attributes:KEY, attributes.KEY = \"VALUE\", hasPrefix(...) or (, found %s", p.near())
}

func (p *fparser) hasPrefix() (*fnode, error) {
	p.space()
	if p.eof() || p.src[p.pos] != '(' {
		return nil, p.errorf("expected ( after hasPrefix")
	}
	p.pos++
	p.space()
	if !p.keyword("attributes") {
		return nil, p.errorf("hasPrefix takes attributes.KEY first, found %s", p.near())
	}
	p.space()
	if p.eof() || p.src[p.pos] != '.' {
		return nil, p.errorf("expected . after attributes in hasPrefix")
	}
	p.pos++
	key, err := p.key()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.eof() || p.src[p.pos] != ',' {
		return nil, p.errorf("expected , in hasPrefix, found %s", p.near())
	}
	p.pos++
	val, err := p.str()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.eof() || p.src[p.pos] != ')' {
		return nil, p.errorf("expected ) to close hasPrefix, found %s", p.near())
	}
	p.pos++
	return &fnode{op: opPrefix, key: key, val: val}, nil
}

// key := identifier | STRING
func (p *fparser) key() (string, error) {
	p.space()
	if p.eof() {
		return "", p.errorf("expected an attribute key, found the end of the filter")
	}
	if c := p.src[p.pos]; c == '"' || c == '\'' {
		k, err := p.str()
		if err == nil && k == "" {
			return "", p.errorf("empty attribute key")
		}
		return k, err
	}
	start := p.pos
	for !p.eof() && isIdentChar(p.src[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", p.errorf("expected an attribute key, found %s (quote keys with other characters)", p.near())
	}
	return p.src[start:p.pos], nil
}

// str reads a quoted string literal with escapes.
func (p *fparser) str() (string, error) {
	p.space()
	if p.eof() {
		return "", p.errorf("expected a quoted string, found the end of the filter")
	}
	q := p.src[p.pos]
	if q != '"' && q != '\'' {
		return "", p.errorf("expected a quoted string, found %s", p.near())
	}
	start := p.pos
	p.pos++
	var b strings.Builder
	for {
		if p.eof() {
			p.pos = start
			return "", p.errorf("string is not closed")
		}
		c := p.src[p.pos]
		switch {
		case c == q:
			p.pos++
			return b.String(), nil
		case c == '\\':
			if err := p.escape(&b); err != nil {
				return "", err
			}
		case c == '\n':
			return "", p.errorf("newline in string (write \\n)")
		default:
			r, size := utf8.DecodeRuneInString(p.src[p.pos:])
			if r == utf8.RuneError && size == 1 {
				return "", p.errorf("invalid UTF-8 in string")
			}
			b.WriteString(p.src[p.pos : p.pos+size])
			p.pos += size
		}
	}
}

// escape reads one escape sequence (the backslash is at pos).
func (p *fparser) escape(b *strings.Builder) error {
	p.pos++
	if p.eof() {
		return p.errorf("string ends in a backslash")
	}
	c := p.src[p.pos]
	p.pos++
	simple := map[byte]byte{'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v',
		'\\': '\\', '"': '"', '\'': '\'', '`': '`', '?': '?'}
	if r, ok := simple[c]; ok {
		b.WriteByte(r)
		return nil
	}
	digits := func(n, base int) (uint64, error) {
		if p.pos+n > len(p.src) {
			return 0, p.errorf("escape \\%c needs %d digits", c, n)
		}
		v, err := strconv.ParseUint(p.src[p.pos:p.pos+n], base, 32)
		if err != nil {
			return 0, p.errorf("bad digits in escape \\%c%s", c, p.src[p.pos:p.pos+n])
		}
		p.pos += n
		return v, nil
	}
	switch c {
	case 'x', 'X':
		v, err := digits(2, 16)
		if err != nil {
			return err
		}
		b.WriteByte(byte(v))
	case 'u', 'U':
		n := 4
		if c == 'U' {
			n = 8
		}
		v, err := digits(n, 16)
		if err != nil {
			return err
		}
		if v > utf8.MaxRune || (v >= 0xD800 && v < 0xE000) {
			return p.errorf("escape \\%c: %X is not a valid code point", c, v)
		}
		b.WriteRune(rune(v))
	case '0', '1', '2', '3':
		p.pos--
		v, err := digits(3, 8)
		if err != nil {
			return err
		}
		b.WriteByte(byte(v))
	default:
		return p.errorf("unknown escape \\%c", c)
	}
	return nil
}
