package sandbox

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func newJailer(t *testing.T) *Jailer {
	t.Helper()
	j, err := New(Config{})
	if err != nil {
		t.Skipf("no sandbox on this host: %v", err)
	}
	t.Cleanup(j.Close)
	return j
}

// run starts a sandbox running argv and returns its output and exit.
func run(t *testing.T, j *Jailer, spec JailSpec, argv ...string) (string, *Jail) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	spec.Stdout, spec.Stderr = w, w
	spec.Child = &Child{Argv: argv, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/"}
	jail, err := j.Start(spec)
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, r); close(done) }()
	select {
	case <-jail.Done():
	case <-time.After(20 * time.Second):
		jail.Kill()
		t.Fatal("sandbox did not finish")
	}
	<-done
	r.Close()
	return out.String(), jail
}

func TestJailBasics(t *testing.T) {
	j := newJailer(t)
	out, jail := run(t, j, JailSpec{}, "/bin/sh", "-c",
		`id -u; id -g; hostname; echo pid $$; ls /; cat /proc/self/status | grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):';
		 touch /usr/x 2>&1 || echo rofs-usr; touch /x 2>&1 || echo rofs-root; echo hi > /tmp/t && cat /tmp/t;
		 ls /proc | grep -cE '^[0-9]+$'; cat /etc/passwd | head -1; ls /root 2>&1 | head -1; ls /.old 2>&1 | head -1`)
	t.Logf("exit: %s\n%s", jail.ExitReason(), out)
	for _, want := range []string{"1000\n1000\nduct\n", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000",
		"NoNewPrivs:\t1", "Seccomp:\t2", "rofs-usr", "rofs-root", "hi\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestJailIsolation: no view of the host's processes, network or files,
// and the dangerous syscalls fail.
func TestJailIsolation(t *testing.T) {
	j := newJailer(t)
	out, _ := run(t, j, JailSpec{}, "/bin/sh", "-c", `
		echo procs $(ls /proc | grep -cE '^[0-9]+$')
		echo ifaces $(ls /sys/class/net 2>/dev/null | wc -l) $(cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | tr '\n' ,)
		unshare -U true 2>/dev/null && echo unshare-allowed || echo unshare-denied
		mount -t tmpfs x /tmp 2>/dev/null && echo mount-allowed || echo mount-denied
		cat /etc/shadow 2>/dev/null && echo shadow-read || echo shadow-denied
		ls /home 2>/dev/null && echo home-visible || echo home-absent
		(exec 3<>/dev/tcp/1.1.1.1/53) 2>/dev/null && echo net-out || echo net-none
	`)
	t.Log(out)
	for _, want := range []string{"ifaces 0 lo,", "unshare-denied", "mount-denied", "shadow-denied", "home-absent"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	var procs int
	fmt.Sscanf(out[strings.Index(out, "procs "):], "procs %d", &procs)
	if procs < 1 || procs > 8 {
		t.Errorf("the sandbox sees %d processes: more than its own few", procs)
	}
}
