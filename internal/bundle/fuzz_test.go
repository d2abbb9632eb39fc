package bundle

import (
	"bytes"
	"strings"
	"testing"
)

// fuzzLimits keep each fuzz run small.
var fuzzLimits = Limits{MaxArchive: 1 << 20, MaxExtracted: 1 << 20, MaxFiles: 64, MaxPath: 256}

// hostile are seeds for both fuzz targets.
var hostile = [][]ent{
	{file("main.go", "package function"), exe("bin/run", "#!/bin/sh"), dir("empty/"), link("l", "main.go")},
	{file("../evil", "x")},
	{file("/abs", "x")},
	{link("l", "../victim"), file("l/secret", "x")},
	{dir("a/"), link("b", "a/x/../.."), link("a/x", ".")},
	{link("a/up", ".."), link("b", "a/up/a/up/..")},
	{link("a", "b"), link("b", "a")},
	{file("f", "x"), hard("h", "f"), hard("g", "../victim/secret")},
	{file("a", "1"), file("./a", "2")},
	{{typ: 'f', name: "su", body: "x", mode: 0o4755}},
	{{typ: 'p', name: "pipe"}},
}

// FuzzExtract feeds arbitrary bytes to Extract: it must never panic, never
// create anything outside dst, and either fail with an archive error
// leaving dst empty or leave a tree that packs, extracts and digests the
// same again.
func FuzzExtract(f *testing.F) {
	for _, ents := range hostile {
		for _, format := range allFormats {
			if format == "zip" && hasHardlink(ents) {
				continue
			}
			f.Add(build(f, format, ents))
		}
	}
	f.Add(build(f, "zip", []ent{file("a\x00b", "x"), {typ: 's', name: "s"}}))
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, data []byte) {
		extractChecked(t, data)
	})
}

// FuzzExtractTree builds tar and zip archives from a fuzzed description,
// one entry a line: a type letter (f, d, l, h), a name, and after a tab
// the content or link target. It reaches the path and link checks that
// random bytes rarely get past the format readers to.
func FuzzExtractTree(f *testing.F) {
	for _, ents := range hostile {
		var b strings.Builder
		for _, e := range ents {
			if e.typ == 'p' || e.mode != 0 {
				continue
			}
			b.WriteString(string(e.typ) + e.name + "\t" + e.body + "\n")
		}
		f.Add(b.String(), false)
	}
	f.Fuzz(func(t *testing.T, desc string, zip bool) {
		var ents []ent
		for line := range strings.SplitSeq(desc, "\n") {
			if line == "" {
				continue
			}
			name, body, _ := strings.Cut(line[1:], "\t")
			e := ent{typ: line[0], name: name, body: body}
			switch e.typ {
			case 'f', 'd', 'l':
			case 'h':
				if zip {
					return
				}
			default:
				return
			}
			ents = append(ents, e)
		}
		data, ok := tryBuild(t, zip, ents)
		if ok {
			extractChecked(t, data)
		}
	})
}

// tryBuild builds an archive, reporting false where the writer refuses
// the description (names tar cannot encode, say).
func tryBuild(t *testing.T, zip bool, ents []ent) (data []byte, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	fb := &fatalB{T: t}
	if zip {
		return makeZip(fb, ents), true
	}
	return makeTar(fb, ents), true
}

// fatalB turns Fatalf into a panic tryBuild recovers from.
type fatalB struct {
	*testing.T
}

func (f *fatalB) Fatalf(string, ...any) { panic("unbuildable") }
func (f *fatalB) Fatal(...any)          { panic("unbuildable") }

func hasHardlink(ents []ent) bool {
	for _, e := range ents {
		if e.typ == 'h' {
			return true
		}
	}
	return false
}

func extractChecked(t *testing.T, data []byte) {
	dst, check := sandbox(t)
	_, err := Extract(bytes.NewReader(data), dst, fuzzLimits)
	check()
	if err != nil {
		if !archiveError(err) {
			t.Fatalf("Extract: %v: not an archive error", err)
		}
		if got := names(t, dst); len(got) > 0 {
			t.Fatalf("dst holds %q after failing", got)
		}
		return
	}
	checkTree(t, dst)
	want, err := Digest(dst)
	if err != nil {
		t.Fatalf("Digest: %v", err)
	}
	var buf bytes.Buffer
	if err := Pack(dst, &buf, nil); err != nil {
		t.Fatalf("Pack of an extracted tree: %v", err)
	}
	again, check2 := sandbox(t)
	if _, err := Extract(&buf, again, Limits{}); err != nil {
		t.Fatalf("Extract of a packed tree: %v", err)
	}
	check2()
	if got, err := Digest(again); err != nil || got != want {
		t.Fatalf("Digest after Pack and Extract: %s, %v; want %s", got, err, want)
	}
}
