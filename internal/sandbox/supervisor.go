package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The supervisor is this program re-executed inside fresh namespaces: PID
// 1 of the sandbox. It builds the sandbox's root file system, pivots into
// it, brings loopback up, and then starts the function's process with no
// privileges, keeping the few it needs itself (to attach an artifact
// later). It exits when that process does, which ends every other process
// in the PID namespace, and when Duct closes the control socket.

// supervisorEnv marks the re-executed supervisor.
const supervisorEnv = "DUCT_SANDBOX_SUPERVISOR"

// Fixed fds in the supervisor.
const (
	fdControl  = 3 // supervisor ↔ Duct, JSON lines, also carries fds
	fdListener = 4 // the socket the instance serves on
	fdShimCtl  = 5 // the shim's own control socket (shim instances)
	fdFirstDir = 6 // directories to expose, in setup.Dirs order
)

// maxFiles bounds the open files of each process in a sandbox.
const maxFiles = 4096

// Inside the sandbox, the function runs as this uid and gid.
const (
	childUID = 1000
	childGID = 1000
)

// setup is the supervisor's configuration, sent as the first control line.
type setup struct {
	// Dirs are host directories opened by Duct, exposed read-only at
	// Target (fd fdFirstDir+i).
	Dirs []dirMount `json:"dirs"`
	// System are host paths bound read-only at the same place when they
	// exist (/usr, /lib, …); Files likewise for single files.
	System []string `json:"system"`
	Files  []string `json:"files"`
	// TmpSize bounds /tmp, in bytes.
	TmpSize int64 `json:"tmpSize"`
	// Network: "none" (own namespace, loopback only) or "host".
	Network string `json:"network"`
	// Child, when set, starts at once (a pre-started runtime); else the
	// supervisor waits for an exec message.
	Child *childSpec `json:"child,omitempty"`
}

type dirMount struct {
	Target string `json:"target"`
}

type childSpec struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	// Shim: pass the listener and the shim control socket as fds 3 and 4.
	// Otherwise the child serves HTTP on 127.0.0.1:RelayPort inside the
	// sandbox and the supervisor relays the listener to it.
	Shim      bool `json:"shim"`
	RelayPort int  `json:"relayPort,omitempty"`
}

// message is a control line from Duct.
type message struct {
	Op    string     `json:"op"` // attach, files, exec
	Child *childSpec `json:"child,omitempty"`
	Files []fileSpec `json:"files,omitempty"`
	fds   []int      // descriptors that came with the message
}

// fileSpec is a file written into the sandbox's /run/secrets (mode 0400,
// owned by the function's uid).
type fileSpec struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

type reply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	PID   int    `json:"pid,omitempty"`
}

func init() {
	if os.Getenv(supervisorEnv) == "" {
		return
	}
	// From here on this process is a supervisor, never the program it was
	// built as.
	os.Exit(supervise())
}

func supervise() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "duct sandbox: "+format+"\n", args...)
		return 111
	}
	ctl, err := net.FileConn(os.NewFile(fdControl, "control"))
	if err != nil {
		return fail("control socket: %v", err)
	}
	uc, ok := ctl.(*net.UnixConn)
	if !ok {
		return fail("control socket is not a Unix socket")
	}
	sv := &supervisor{ctl: uc, forks: make(chan forkReq)}
	line, fds, err := sv.recv()
	if err != nil {
		return fail("read setup: %v", err)
	}
	closeFDs(fds)
	var s setup
	if err := json.Unmarshal(line, &s); err != nil {
		return fail("setup: %v", err)
	}
	sv.setup = &s
	if err := sv.build(); err != nil {
		sv.send(reply{Error: err.Error()})
		return fail("%v", err)
	}
	// Bound what one function can hold of the kernel's file table; its
	// processes inherit the limit.
	nofile := unix.Rlimit{Cur: maxFiles, Max: maxFiles}
	unix.Setrlimit(unix.RLIMIT_NOFILE, &nofile)
	go sv.forker()
	if s.Child != nil {
		if err := sv.start(s.Child); err != nil {
			sv.send(reply{Error: err.Error()})
			return fail("%v", err)
		}
	}
	sv.send(reply{OK: true})
	return sv.loop()
}

type supervisor struct {
	ctl   *net.UnixConn // SOCK_SEQPACKET: one message per packet
	setup *setup
	child *os.Process
	exit  chan int
	forks chan forkReq
}

func (sv *supervisor) send(r reply) {
	b, _ := json.Marshal(r)
	sv.ctl.Write(b)
}

// maxPacket bounds one control message (secret files ride in them).
const maxPacket = 256 << 10

// recv reads one control message and the descriptors that came with it.
func (sv *supervisor) recv() ([]byte, []int, error) {
	buf := make([]byte, maxPacket)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := sv.ctl.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, nil, err
	}
	if n == 0 {
		return nil, nil, io.EOF
	}
	var fds []int
	if oobn > 0 {
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for i := range cmsgs {
				if f, err := unix.ParseUnixRights(&cmsgs[i]); err == nil {
					fds = append(fds, f...)
				}
			}
		}
	}
	return buf[:n], fds, nil
}

func closeFDs(fds []int) {
	for _, f := range fds {
		unix.Close(f)
	}
}

// newRoot is where the root file system is assembled before pivot_root.
const newRoot = "/tmp"

// build assembles the root file system and enters it.
func (sv *supervisor) build() error {
	s := sv.setup
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount("tmpfs", newRoot, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=4m,mode=0755"); err != nil {
		return fmt.Errorf("root tmpfs: %w", err)
	}
	r := func(p string) string { return filepath.Join(newRoot, p) }
	for _, p := range s.System {
		st, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if st.Mode()&os.ModeSymlink != 0 {
			// /bin → usr/bin on merged-usr systems: keep the link.
			target, err := os.Readlink(p)
			if err == nil {
				os.Symlink(target, r(p))
			}
			continue
		}
		if err := bindRO(p, r(p), st.IsDir()); err != nil {
			return err
		}
	}
	for _, p := range s.Files {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			if err := bindRO(p, r(p), false); err != nil {
				return err
			}
		} else if err == nil && st.IsDir() {
			if err := bindRO(p, r(p), true); err != nil {
				return err
			}
		}
	}
	for i, d := range s.Dirs {
		if err := moveMount(fdFirstDir+i, r(d.Target)); err != nil {
			return fmt.Errorf("expose %s: %w", d.Target, err)
		}
		unix.Close(fdFirstDir + i)
	}
	for _, d := range []string{"fn", "proc", "dev", "tmp", "run/secrets", "etc", ".old"} {
		if err := os.MkdirAll(r(d), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd":   "root:x:0:0:root:/root:/sbin/nologin\nduct:x:1000:1000:function:/tmp:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n",
		"etc/group":    "root:x:0:\nduct:x:1000:\nnogroup:x:65534:\n",
		"etc/hostname": "duct\n",
	}
	if _, err := os.Stat(r("etc/hosts")); err != nil {
		files["etc/hosts"] = "127.0.0.1 localhost duct\n::1 localhost\n"
	}
	for name, body := range files {
		if err := os.WriteFile(r(name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	if err := unix.Mount("tmpfs", r("tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV,
		fmt.Sprintf("size=%d,mode=1777", max(s.TmpSize, 1<<20))); err != nil {
		return fmt.Errorf("/tmp: %w", err)
	}
	if err := unix.Mount("tmpfs", r("run/secrets"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC,
		fmt.Sprintf("size=1m,mode=0500,uid=%d,gid=%d", childUID, childGID)); err != nil {
		return fmt.Errorf("/run/secrets: %w", err)
	}
	if err := sv.buildDev(r("dev")); err != nil {
		return err
	}
	if err := unix.Mount("proc", r("proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("/proc: %w", err)
	}
	if err := unix.PivotRoot(newRoot, r(".old")); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Unmount("/.old", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host root: %w", err)
	}
	os.Remove("/.old")
	// The root itself becomes read-only; /tmp, /dev/shm and /run/secrets
	// stay writable tmpfs.
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("read-only root: %w", err)
	}
	if s.Network == "none" {
		if err := loopbackUp(); err != nil {
			return fmt.Errorf("loopback: %w", err)
		}
	}
	unix.Sethostname([]byte("duct"))
	return nil
}

// buildDev makes a minimal /dev: the harmless character devices bound from
// the host, a small /dev/shm, and the usual links.
func (sv *supervisor) buildDev(dev string) error {
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return fmt.Errorf("/dev: %w", err)
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		if err := bindRO("/dev/"+d, filepath.Join(dev, d), false); err != nil && d != "tty" {
			return err
		}
	}
	// Device binds must stay writable (/dev/null): undo the read-only
	// remount bindRO applied.
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		unix.Mount("", filepath.Join(dev, d), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_NOSUID|unix.MS_NOEXEC, "")
	}
	os.MkdirAll(filepath.Join(dev, "shm"), 0o1777)
	if err := unix.Mount("tmpfs", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=16m,mode=1777"); err != nil {
		return fmt.Errorf("/dev/shm: %w", err)
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"} {
		os.Symlink(target, filepath.Join(dev, name))
	}
	return unix.Mount("", dev, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, "")
}

// bindRO bind-mounts src at dst, read-only, creating dst.
func bindRO(src, dst string, dir bool) error {
	if dir {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return err
		}
		f.Close()
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	// A remount must repeat the flags the kernel locked on the mount (a
	// user namespace cannot clear nosuid or nodev): try with them.
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID)
	var st unix.Statfs_t
	if unix.Statfs(dst, &st) == nil {
		flags |= uintptr(st.Flags) & (unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_NODIRATIME)
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		if err2 := unix.Mount("", dst, "", flags|unix.MS_NODEV, ""); err2 != nil {
			return fmt.Errorf("read-only %s: %w", dst, err)
		}
	}
	return nil
}

// loopbackUp sets lo up in the sandbox's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// forkReq asks the restricted thread to start a process.
type forkReq struct {
	cmd  *exec.Cmd
	done chan error
}

// forker owns one OS thread that has given up every privilege: processes
// it starts inherit no capabilities, cannot gain any, and run under the
// seccomp filter. The thread is never handed back to the Go scheduler.
func (sv *supervisor) forker() {
	runtime.LockOSThread()
	err := restrictThread()
	for req := range sv.forks {
		if err != nil {
			req.done <- fmt.Errorf("restrict: %w", err)
			continue
		}
		req.done <- req.cmd.Start()
	}
}

// start starts the function's process.
func (sv *supervisor) start(c *childSpec) error {
	if sv.child != nil {
		return errors.New("a process already runs in this sandbox")
	}
	if len(c.Argv) == 0 {
		return errors.New("no command")
	}
	cmd := &exec.Cmd{
		Path:   c.Argv[0],
		Args:   c.Argv,
		Env:    c.Env,
		Dir:    c.Dir,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: childUID, Gid: childGID, Groups: []uint32{}},
			// Not a new session: with scheduler autogroups, a session is a
			// group the scheduler balances against the server's, which
			// tripled context switches per request.
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	if c.Shim {
		cmd.ExtraFiles = []*os.File{os.NewFile(fdListener, "listener"), os.NewFile(fdShimCtl, "shim-control")}
	}
	done := make(chan error, 1)
	sv.forks <- forkReq{cmd: cmd, done: done}
	if err := <-done; err != nil {
		return fmt.Errorf("start %s: %w", c.Argv[0], err)
	}
	sv.child = cmd.Process
	sv.exit = make(chan int, 1)
	go func() {
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
		sv.exit <- code
	}()
	if !c.Shim && c.RelayPort > 0 {
		if err := sv.relay(c.RelayPort); err != nil {
			return err
		}
	}
	return nil
}

// relay carries connections from the listener Duct handed down to a
// server the child runs on loopback inside the sandbox, once that server
// accepts connections.
func (sv *supervisor) relay(port int) error {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	wait := 500 * time.Microsecond
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case code := <-sv.exit:
			sv.exit <- code
			return fmt.Errorf("the program exited with status %d before serving on $PORT", code)
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("the program did not serve on $PORT within 30s")
		}
		time.Sleep(wait)
		wait = min(wait*2, 20*time.Millisecond)
	}
	ln, err := net.FileListener(os.NewFile(fdListener, "listener"))
	if err != nil {
		return err
	}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer out.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(out, in); closeWrite(out); done <- struct{}{} }()
				go func() { io.Copy(in, out); closeWrite(in); done <- struct{}{} }()
				<-done
				<-done
			}()
		}
	}()
	return nil
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// loop serves control messages until the child exits or Duct goes away.
func (sv *supervisor) loop() int {
	msgs := make(chan message)
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			line, fds, err := sv.recv()
			if err != nil {
				return
			}
			var m message
			if json.Unmarshal(line, &m) != nil {
				closeFDs(fds)
				continue
			}
			m.fds = fds
			msgs <- m
		}
	}()
	var exit chan int
	for {
		if sv.exit != nil {
			exit = sv.exit
		}
		select {
		case <-gone:
			return 0
		case code := <-exit:
			return code
		case m := <-msgs:
			sv.send(sv.handle(m))
			closeFDs(m.fds)
		}
	}
}

func (sv *supervisor) handle(m message) reply {
	switch m.Op {
	case "attach":
		if err := sv.attach(m.fds); err != nil {
			return reply{Error: err.Error()}
		}
		return reply{OK: true}
	case "files":
		for _, f := range m.Files {
			if err := writeSecret(f); err != nil {
				return reply{Error: err.Error()}
			}
		}
		return reply{OK: true}
	case "exec":
		if m.Child == nil {
			return reply{Error: "exec without a command"}
		}
		if err := sv.start(m.Child); err != nil {
			return reply{Error: err.Error()}
		}
		return reply{OK: true, PID: sv.child.Pid}
	}
	return reply{Error: "unknown op " + strconv.Quote(m.Op)}
}

// attach mounts the directory Duct sent, read-only, at /fn.
func (sv *supervisor) attach(fds []int) error {
	if len(fds) != 1 {
		return errors.New("attach: want one directory descriptor")
	}
	return moveMount(fds[0], "/fn")
}

// moveMount attaches the detached mount tree fd (read-only already) at
// dir.
func moveMount(fd int, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return unix.MoveMount(fd, "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH)
}

// writeSecret writes one secret file for the function to read.
func writeSecret(f fileSpec) error {
	if f.Name == "" || strings.ContainsAny(f.Name, "/\x00") || f.Name == "." || f.Name == ".." {
		return fmt.Errorf("bad secret file name %q", f.Name)
	}
	p := filepath.Join("/run/secrets", f.Name)
	if err := os.WriteFile(p, f.Data, 0o400); err != nil {
		return err
	}
	return os.Chown(p, childUID, childGID)
}
