package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Config is the server-wide sandbox configuration.
type Config struct {
	// Expose lists host directories every sandbox sees read-only at
	// Target (language runtimes outside /usr, Duct's shims). They are
	// opened by Duct, so they need not be reachable by the sandbox's uid.
	Expose []Expose
	// TmpSize bounds each sandbox's /tmp; default 64 MiB. It counts
	// against the memory limit.
	TmpSize int64
	// CPUQuota puts sandboxes in CPU cgroups so that Limits.CPUs and
	// Limits.Weight apply. Off by default: see newCgroupRoot.
	CPUQuota bool
	// UIDBase is the host uid of uid 0 inside sandboxes; the function's
	// uid 1000 is UIDBase+1000. Default 1,000,000 (65,536 ids are
	// mapped).
	UIDBase int
	Logger  *slog.Logger
}

// Expose is a host directory shown inside sandboxes.
type Expose struct {
	Host, Target string
}

// systemDirs are bound read-only into every sandbox when present.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}

// systemFiles are the parts of the host's /etc that programs need.
var systemFiles = []string{"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/localtime",
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ssl", "/etc/ca-certificates",
	"/etc/alternatives", "/etc/mime.types", "/etc/protocols", "/etc/services"}

// Jailer starts sandboxes. The zero value is not usable; see New.
type Jailer struct {
	cfg  Config
	log  *slog.Logger
	self *os.File // this program, re-executed as supervisor through its fd
	cg   *cgroupRoot
	feat Features

	mu      sync.Mutex // guards self and tearing
	tearing int        // sandboxes being torn down
}

// New checks that the host can sandbox (see Probe) and prepares the
// cgroups. It fails, saying what is missing, when it cannot: the caller
// then refuses to run, or runs unsandboxed only when told to.
func New(cfg Config) (*Jailer, error) {
	if cfg.TmpSize == 0 {
		cfg.TmpSize = 64 << 20
	}
	if cfg.UIDBase == 0 {
		cfg.UIDBase = 1_000_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	feat := Probe()
	if missing := feat.Missing(); len(missing) > 0 {
		return nil, &UnavailableError{Features: feat}
	}
	// The supervisor runs as an unprivileged host uid that may not reach
	// this program's directory (go run builds in a private one): it is
	// executed through an inherited descriptor instead of its path.
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sandbox: find this program: %w", err)
	}
	self, err := os.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("sandbox: open this program: %w", err)
	}
	cg, err := newCgroupRoot(fmt.Sprintf("duct-%d-%s", os.Getpid(), randomHex(3)), cfg.CPUQuota)
	if err == nil {
		cg.sweepStale()
	}
	if err != nil {
		self.Close()
		return nil, fmt.Errorf("sandbox: cgroups: %w", err)
	}
	j := &Jailer{cfg: cfg, log: cfg.Logger, self: self, cg: cg, feat: feat}
	for _, e := range cfg.Expose {
		f, err := detachedRO(e.Host)
		if err != nil {
			j.Close()
			return nil, fmt.Errorf("sandbox: expose %s: %w", e.Host, err)
		}
		f.Close()
	}
	return j, nil
}

// Features reports what the host provides.
func (j *Jailer) Features() Features { return j.feat }

// Close releases the jailer's cgroup directory (sandboxes must be gone).
func (j *Jailer) Close() {
	j.mu.Lock()
	if j.self != nil {
		j.self.Close()
		j.self = nil
	}
	j.mu.Unlock()
	// Sandboxes may still be stopping (a pool drains in the background):
	// give them a few seconds, then sweep what remains.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		j.mu.Lock()
		n := j.tearing
		j.mu.Unlock()
		if n == 0 {
			break
		}
	}
	if j.cg != nil {
		j.cg.sweep()
	}
}

// JailSpec describes one sandbox to start.
type JailSpec struct {
	// Network is "none" (the default: an own network namespace with only
	// loopback) or "host" (the host's network stack, for outbound calls).
	Network string
	// Listener is the socket the instance serves on (on the host side, a
	// Unix socket in Duct's run directory). ShimControl is the shim's
	// control socket; nil for programs serving $PORT.
	Listener, ShimControl *os.File
	// Stdout and Stderr receive the sandbox's output.
	Stdout, Stderr *os.File
	// Child starts at once when set; else use Exec later.
	Child *Child
	// Limits apply from the start.
	Limits Limits
}

// Child is the process a sandbox runs; paths are inside the sandbox.
type Child struct {
	Argv []string
	Env  []string
	Dir  string
	// RelayPort, for a program serving $PORT: the sandbox relays the
	// listener to 127.0.0.1:RelayPort inside it.
	RelayPort int
}

// Jail is a running sandbox.
type Jail struct {
	*Process
	ctl    *net.UnixConn
	cg     *cgroup
	jailer *Jailer
	ooms   atomic.Int64 // OOM kills, recorded before the cgroup goes

	mu sync.Mutex // serialises control exchanges
}

// Start starts a sandbox and returns once its root is built (and its
// child, if given, started).
func (j *Jailer) Start(spec JailSpec) (*Jail, error) {
	id := randomHex(6)
	cg, err := j.cg.create(id)
	if err != nil {
		return nil, fmt.Errorf("sandbox: cgroup: %w", err)
	}
	if err := cg.set(spec.Limits); err != nil {
		cg.remove()
		return nil, fmt.Errorf("sandbox: limits: %w", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		cg.remove()
		return nil, err
	}
	parentF, childF := os.NewFile(uintptr(fds[0]), "sandbox-control"), os.NewFile(uintptr(fds[1]), "sandbox-control-child")
	defer childF.Close()
	c, err := net.FileConn(parentF)
	parentF.Close()
	if err != nil {
		cg.remove()
		return nil, err
	}
	ctl := c.(*net.UnixConn)
	devNull, _ := os.Open(os.DevNull)
	defer devNull.Close()
	pick := func(f *os.File) *os.File {
		if f == nil {
			return devNull
		}
		return f
	}
	// The exposed directories travel as detached mount trees, made for
	// this sandbox: the supervisor moves them into its own namespace.
	extra := []*os.File{childF, pick(spec.Listener), pick(spec.ShimControl)}
	for _, e := range j.cfg.Expose {
		f, err := detachedRO(e.Host)
		if err != nil {
			ctl.Close()
			cg.remove()
			return nil, fmt.Errorf("sandbox: expose %s: %w", e.Host, err)
		}
		defer f.Close()
		extra = append(extra, f)
	}
	j.mu.Lock()
	if j.self == nil {
		j.mu.Unlock()
		ctl.Close()
		cg.remove()
		return nil, errors.New("sandbox: jailer closed")
	}
	extra = append(extra, j.self)
	selfFD := 3 + len(extra) - 1
	j.mu.Unlock()

	flags := uintptr(syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS)
	if spec.Network != "host" {
		flags |= syscall.CLONE_NEWNET
	}
	attr := &syscall.SysProcAttr{
		Cloneflags:                 flags,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: j.cfg.UIDBase, Size: 65536}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: j.cfg.UIDBase, Size: 65536}},
		GidMappingsEnableSetgroups: true,
		// Become the namespace's root (host uid UIDBase): the process
		// cloned from Duct is host root, which the namespace does not map.
		Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
		Pdeathsig:  syscall.SIGKILL,
	}
	cgfd, closeCG, err := cg.fd()
	if err != nil {
		ctl.Close()
		cg.remove()
		return nil, err
	}
	defer closeCG()
	if cgfd >= 0 {
		attr.UseCgroupFD, attr.CgroupFD = true, cgfd
	}
	newCmd := func() *exec.Cmd {
		cmd := &exec.Cmd{
			Path:        "/proc/self/fd/" + strconv.Itoa(selfFD),
			Args:        []string{"duct-sandbox"},
			Env:         []string{supervisorEnv + "=1", "GOMAXPROCS=1", "GOGC=50", "PATH=/usr/bin:/bin"},
			Dir:         "/",
			ExtraFiles:  extra,
			SysProcAttr: attr,
		}
		if spec.Stdout != nil {
			cmd.Stdout = spec.Stdout
		}
		if spec.Stderr != nil {
			cmd.Stderr = spec.Stderr
		}
		return cmd
	}
	cmd := newCmd()
	p := &Process{cmd: cmd, done: make(chan struct{}), started: time.Now()}
	err = cmd.Start()
	joined := attr.UseCgroupFD
	if err != nil && attr.UseCgroupFD && (errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL)) {
		// A kernel without clone3 into a cgroup (before 5.7): start, then
		// join.
		attr.UseCgroupFD, joined = false, false
		cmd = newCmd()
		p.cmd = cmd
		err = cmd.Start()
	}
	if err != nil {
		ctl.Close()
		cg.remove()
		return nil, fmt.Errorf("sandbox: start: %w", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	jail := &Jail{Process: p, ctl: ctl, cg: cg, jailer: j}
	p.onKill = jail.teardown
	if !joined {
		if err := cg.join(cmd.Process.Pid); err != nil {
			jail.Kill()
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	set := setup{Dirs: make([]dirMount, len(j.cfg.Expose)), System: systemDirs, Files: systemFiles,
		TmpSize: j.cfg.TmpSize, Network: "none"}
	if spec.Network == "host" {
		set.Network = "host"
	}
	for i, e := range j.cfg.Expose {
		set.Dirs[i] = dirMount{Target: e.Target}
	}
	if c := spec.Child; c != nil {
		set.Child = &childSpec{Argv: c.Argv, Env: c.Env, Dir: c.Dir, Shim: spec.ShimControl != nil, RelayPort: c.RelayPort}
	}
	if err := jail.call(set, nil, 30*time.Second); err != nil {
		jail.Kill()
		return nil, fmt.Errorf("sandbox: setup: %w", err)
	}
	return jail, nil
}

// call sends one control message (with fds) and waits for the reply.
func (jl *Jail) call(msg any, fds []int, timeout time.Duration) error {
	jl.mu.Lock()
	defer jl.mu.Unlock()
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	jl.ctl.SetDeadline(time.Now().Add(timeout))
	defer jl.ctl.SetDeadline(time.Time{})
	if _, _, err := jl.ctl.WriteMsgUnix(b, oob, nil); err != nil {
		return jl.exited(err)
	}
	buf := make([]byte, 4096)
	n, err := jl.ctl.Read(buf)
	if err != nil {
		return jl.exited(err)
	}
	var r reply
	if err := json.Unmarshal(buf[:n], &r); err != nil {
		return fmt.Errorf("bad reply %q", buf[:n])
	}
	if !r.OK {
		return errors.New(r.Error)
	}
	return nil
}

// exited explains a control failure by the supervisor's end, if it ended.
func (jl *Jail) exited(err error) error {
	select {
	case <-jl.Done():
		return fmt.Errorf("sandbox %s", jl.ExitReason())
	case <-time.After(100 * time.Millisecond):
		return err
	}
}

// Attach shows the host directory dir, read-only, at /fn.
func (jl *Jail) Attach(dir string) error {
	f, err := detachedRO(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return jl.call(message{Op: "attach"}, []int{int(f.Fd())}, 10*time.Second)
}

// detachedRO clones the mount tree at dir into a detached, read-only
// mount (open_tree), which a sandbox can move into its own mount namespace:
// a plain descriptor or bind mount from the host's namespace could not
// be mounted there.
func detachedRO(dir string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("open_tree %s: %w", dir, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("read-only %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// File is a file a sandbox shows the function in /run/secrets.
type File struct {
	Name string
	Data []byte
}

// WriteFiles writes files into /run/secrets, readable only by the
// function.
func (jl *Jail) WriteFiles(files []File) error {
	if len(files) == 0 {
		return nil
	}
	fs := make([]fileSpec, len(files))
	for i, f := range files {
		fs[i] = fileSpec{Name: f.Name, Data: f.Data}
	}
	return jl.call(message{Op: "files", Files: fs}, nil, 10*time.Second)
}

// Exec starts the sandbox's child (one per sandbox).
func (jl *Jail) Exec(c Child, shim bool) error {
	return jl.call(message{Op: "exec", Child: &childSpec{Argv: c.Argv, Env: c.Env, Dir: c.Dir, Shim: shim,
		RelayPort: c.RelayPort}}, nil, 35*time.Second)
}

// SetLimits changes the sandbox's limits.
func (jl *Jail) SetLimits(l Limits) error { return jl.cg.set(l) }

// OOMKilled reports whether the kernel killed a process of the sandbox for
// exceeding its memory limit.
func (jl *Jail) OOMKilled() bool { return jl.ooms.Load() > 0 || jl.cg.oomKills() > 0 }

// PeakMemory is the most memory the sandbox has used.
func (jl *Jail) PeakMemory() int64 { return jl.cg.peakMemory() }

// Stop asks the sandbox's processes to exit, then kills them after grace.
func (jl *Jail) Stop(grace time.Duration) {
	if !jl.Exited() {
		// SIGTERM to the supervisor reaches nobody (PID 1 of a namespace
		// ignores it); the function gets it through its session.
		for _, pid := range jl.cg.procs() {
			if pid != jl.PID() {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		select {
		case <-jl.Done():
		case <-time.After(grace):
		}
	}
	jl.Kill()
	<-jl.Done()
}

// teardown kills everything in the sandbox and removes its cgroup.
func (jl *Jail) teardown() {
	jl.ctl.Close()
	jl.cg.kill()
	j := jl.jailer
	j.mu.Lock()
	j.tearing++
	j.mu.Unlock()
	go func() {
		defer func() {
			j.mu.Lock()
			j.tearing--
			j.mu.Unlock()
		}()
		<-jl.Done()
		jl.cg.kill()
		jl.ooms.Store(jl.cg.oomKills())
		jl.cg.remove()
	}()
}

func randomHex(n int) string {
	b := make([]byte, n)
	f, err := os.Open("/dev/urandom")
	if err == nil {
		f.Read(b)
		f.Close()
	}
	const hex = "0123456789abcdef"
	out := make([]byte, 2*n)
	for i, c := range b {
		out[2*i], out[2*i+1] = hex[c>>4], hex[c&15]
	}
	return string(out)
}
