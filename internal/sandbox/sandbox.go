// Package sandbox starts, watches and kills one instance process. It owns
// the boundary between Duct and code it does not trust: the process gets
// a clean environment, its own process group and dies with Duct, and
// everything it started is killed at teardown.
package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec describes one process to start.
type Spec struct {
	// Path is the executable; Args is argv including argv[0].
	Path string
	Args []string
	// Env is the complete environment: nothing is inherited.
	Env []string
	Dir string
	// ExtraFiles become fds 3, 4, … in the child.
	ExtraFiles []*os.File
	// Stdout and Stderr receive the process's output (usually pipe write
	// ends); nil means /dev/null.
	Stdout, Stderr *os.File
}

// Process is a started instance process: a plain one (Start), or a
// sandbox's supervisor (Jailer.Start).
type Process struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}
	err     error // set before done closes

	onKill   func() // extra teardown (a sandbox's cgroup)
	killOnce sync.Once
}

// Start starts the process described by spec.
func Start(spec Spec) (*Process, error) {
	if spec.Path == "" {
		return nil, errors.New("sandbox: no executable")
	}
	cmd := &exec.Cmd{
		Path:       spec.Path,
		Args:       spec.Args,
		Env:        spec.Env,
		Dir:        spec.Dir,
		ExtraFiles: spec.ExtraFiles,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,            // one group: teardown kills what it forked
			Pdeathsig: syscall.SIGKILL, // dies with Duct
		},
	}
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	if spec.Stdout != nil {
		cmd.Stdout = spec.Stdout
	}
	if spec.Stderr != nil {
		cmd.Stderr = spec.Stderr
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sandbox: start %s: %w", spec.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		// The group may hold children that outlived the leader.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		close(p.done)
	}()
	p.onKill = func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Started is when the process was started.
func (p *Process) Started() time.Time { return p.started }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, without blocking.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitReason describes how the process ended; valid after Done.
func (p *Process) ExitReason() string {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + ws.Signal().String()
		}
		return "exited with status " + strconv.Itoa(ee.ExitCode())
	}
	if p.err != nil {
		return p.err.Error()
	}
	return "exited with status 0"
}

// Kill kills the process and everything it started, at once.
func (p *Process) Kill() {
	p.killOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		if p.onKill != nil {
			p.onKill()
		}
	})
}

// Stop asks the process to exit with SIGTERM and kills the group after
// grace. It returns when the process is gone.
func (p *Process) Stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	}
	p.Kill() // what it started, too
	<-p.done
}

// PeakMemory returns the most resident memory the process has used, in
// bytes, or 0 when it cannot be read.
func (p *Process) PeakMemory() int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
