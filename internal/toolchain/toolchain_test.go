package toolchain

import (
	"context"
	"strings"
	"testing"
)

func TestDetectResolvesRealInterpreters(t *testing.T) {
	s := Detect(context.Background(), Names{})
	for name, tool := range map[string]Tool{"go": s.Go, "node": s.Node, "python": s.Python} {
		if !tool.OK() {
			t.Logf("%s unavailable here: %s", name, tool.Missing)
			continue
		}
		if strings.Contains(tool.Path, "/shims/") {
			t.Errorf("%s resolved to a version-manager shim: %s", name, tool.Path)
		}
		t.Logf("%s: %s (%s)", name, tool.Path, tool.Version)
	}
	missing := Detect(context.Background(), Names{Go: "no-such-go-here"})
	if missing.Go.OK() {
		t.Fatal("a missing tool was reported present")
	}
	if _, err := missing.For("go"); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("For: %v", err)
	}
}
