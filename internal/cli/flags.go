package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/duct-dev/duct"
)

// flagSet is a flag.FlagSet that knows its short aliases and prints help
// the way duct does ("-f, --follow").
type flagSet struct {
	*flag.FlagSet
	short map[string]string // long name → one-letter alias
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed by Main
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, short: map[string]string{}}
}

// alias makes -s another name for the already defined flag long.
func (fs *flagSet) alias(s, long string) {
	f := fs.Lookup(long)
	if f == nil {
		panic("alias of undefined flag " + long)
	}
	fs.Var(f.Value, s, "")
	fs.short[long] = s
}

// isAlias reports whether name is a short alias.
func (fs *flagSet) isAlias(name string) bool {
	for _, s := range fs.short {
		if s == name {
			return true
		}
	}
	return false
}

// parse parses flags placed anywhere among the arguments ("duct deploy
// ./fn --name x") and returns the positional ones. "--" ends the flags.
func (fs *flagSet) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// set reports whether the flag was given on the command line.
func (fs *flagSet) set(name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name || fs.short[name] == f.Name {
			found = true
		}
	})
	return found
}

// printDefaults writes the flags, long names first, with their aliases.
func (fs *flagSet) printDefaults(w io.Writer) {
	type row struct{ long, names, usage string }
	var rows []row
	fs.VisitAll(func(f *flag.Flag) {
		if fs.isAlias(f.Name) {
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		names := "    --" + f.Name
		if s, ok := fs.short[f.Name]; ok {
			names = "-" + s + ", --" + f.Name
		}
		if isBool(f) {
			arg = ""
		}
		if arg != "" {
			names += " " + arg
		}
		if f.DefValue != "" && !isBool(f) && f.DefValue != "0" && f.DefValue != "[]" {
			usage += " (default " + f.DefValue + ")"
		}
		rows = append(rows, row{f.Name, names, usage})
	})
	sort.Slice(rows, func(i, j int) bool { return rows[i].long < rows[j].long })
	width := 0
	for _, r := range rows {
		width = max(width, len(r.names))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r.names, r.usage)
	}
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// listFlag collects a repeated flag's values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// sizeFlag is a byte size such as 256Mi.
type sizeFlag struct{ v duct.ByteSize }

func (s *sizeFlag) String() string {
	if s.v == 0 {
		return ""
	}
	return s.v.String()
}

func (s *sizeFlag) Set(v string) error {
	b, err := duct.ParseByteSize(v)
	if err != nil {
		return errors.New("want a size such as 256Mi or 1Gi")
	}
	s.v = b
	return nil
}

// durationFlag is a duration in Go syntax ("30s", "5m").
type durationFlag struct{ v duct.Duration }

func (d *durationFlag) String() string {
	if d.v == 0 {
		return ""
	}
	return d.v.String()
}

func (d *durationFlag) Set(v string) error {
	p, err := duct.ParseDuration(v)
	if err != nil {
		return errors.New("want a duration such as 30s or 5m")
	}
	d.v = p
	return nil
}

// choiceFlag is a string that must be one of a few values.
type choiceFlag struct {
	v       *string
	choices []string
}

func (c choiceFlag) String() string {
	if c.v == nil {
		return ""
	}
	return *c.v
}

func (c choiceFlag) Set(s string) error {
	for _, ch := range c.choices {
		if s == ch {
			*c.v = s
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(c.choices, ", "))
}
