package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeV2 makes a directory that looks like a cgroup v2 node with the given
// controllers available.
func fakeV2(t *testing.T, controllers string) string {
	t.Helper()
	own := t.TempDir()
	os.WriteFile(filepath.Join(own, "cgroup.controllers"), []byte(controllers+"\n"), 0o644)
	os.WriteFile(filepath.Join(own, "cgroup.subtree_control"), nil, 0o644)
	os.WriteFile(filepath.Join(own, "cgroup.procs"), []byte("1\n"), 0o644)
	return own
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestCgroupV2Files checks, on a fake cgroup v2 tree, which files the
// sandbox writes: this machine's kernel offers only v1 controllers, most
// users' offer v2.
func TestCgroupV2Files(t *testing.T) {
	own := fakeV2(t, "cpuset cpu io memory pids")
	r, err := newV2Root(own, "duct-x", []string{"memory", "pids"})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(own, "cgroup.subtree_control")); got != "+memory +pids" {
		t.Errorf("own subtree_control %q", got)
	}
	if got := read(t, filepath.Join(own, "duct-x", "cgroup.subtree_control")); got != "+memory +pids" {
		t.Errorf("root subtree_control %q", got)
	}
	cg, err := r.create("inst")
	if err != nil {
		t.Fatal(err)
	}
	if err := cg.set(Limits{Memory: 128 << 20, PIDs: 64, CPUs: 0.5, Weight: 50}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(own, "duct-x", "inst")
	for file, want := range map[string]string{"memory.max": "134217728", "memory.swap.max": "0", "pids.max": "64"} {
		if got := read(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "cpu.max")); err == nil {
		t.Error("cpu.max written without the cpu controller")
	}
	// With a CPU quota asked for, the cpu controller is delegated too.
	own2 := fakeV2(t, "cpu memory pids")
	r2, err := newV2Root(own2, "duct-y", []string{"memory", "pids", "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	cg2, _ := r2.create("inst")
	if err := cg2.set(Limits{Memory: 1 << 30, CPUs: 0.5, Weight: 50}); err != nil {
		t.Fatal(err)
	}
	d2 := filepath.Join(own2, "duct-y", "inst")
	if got := read(t, filepath.Join(d2, "cpu.max")); got != "50000 100000" {
		t.Errorf("cpu.max %q", got)
	}
	if got := read(t, filepath.Join(d2, "cpu.weight")); got != "50" {
		t.Errorf("cpu.weight %q", got)
	}
	if got := read(t, filepath.Join(d2, "pids.max")); got != "max" {
		t.Errorf("pids.max %q", got)
	}
	// A controller the parent does not delegate is a clear error.
	if _, err := newV2Root(fakeV2(t, "cpu io"), "duct-z", []string{"memory", "pids"}); err == nil ||
		!strings.Contains(err.Error(), "memory is not delegated") {
		t.Errorf("missing controller: %v", err)
	}
}

// The OOM counter is read from memory.events on v2.
func TestCgroupV2OOM(t *testing.T) {
	own := fakeV2(t, "memory pids")
	r, _ := newV2Root(own, "d", []string{"memory", "pids"})
	cg, _ := r.create("i")
	os.WriteFile(filepath.Join(own, "d", "i", "memory.events"), []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"), 0o644)
	if n := cg.oomKills(); n != 1 {
		t.Fatalf("oom kills %d", n)
	}
}
