package bundle

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// manyLinks is a hostile-shaped but valid archive: a deep directory, links
// whose targets walk all the way down and back up, and a long chain of
// links to links. Resolution is memoised, so this stays linear.
func manyLinks(t testing.TB, n int) []byte {
	deep := strings.Repeat("d/", 200)
	ents := []ent{file(deep+"f", "x")}
	down := deep + strings.Repeat("../", 200) + "f"
	for i := range n {
		ents = append(ents, link(fmt.Sprintf("walk%d", i), down))
		ents = append(ents, link(fmt.Sprintf("chain%d", i), fmt.Sprintf("chain%d", i+1)))
	}
	ents = append(ents, file(fmt.Sprintf("chain%d", n), "end"))
	return build(t, "tar.gz", ents)
}

func TestExtractManyLinks(t *testing.T) {
	data := manyLinks(t, 1000)
	dst, check := sandbox(t)
	st, err := Extract(bytes.NewReader(data), dst, Limits{})
	check()
	if err != nil {
		t.Fatal(err)
	}
	if st.Symlinks != 2000 {
		t.Errorf("stats %+v", st)
	}
}

func BenchmarkExtract(b *testing.B) {
	var ents []ent
	for i := range 1000 {
		ents = append(ents, file(fmt.Sprintf("pkg%d/file%d.js", i%20, i), strings.Repeat("console.log(1);\n", 64)))
	}
	data := build(b, "tar.gz", ents)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Extract(bytes.NewReader(data), b.TempDir(), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckLinks(b *testing.B) {
	data := manyLinks(b, 4000)
	for b.Loop() {
		if _, err := Extract(bytes.NewReader(data), b.TempDir(), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
