package instance

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/sandbox"
)

// In a sandbox, the artifact is at /fn and a program serving $PORT binds
// this port on the sandbox's own loopback.
const (
	jailArtifact = "/fn"
	jailPort     = 8080
)

// jailNetwork maps a function's network mode to its sandbox's.
func jailNetwork(spec duct.Function) string {
	if spec.Network == duct.NetworkOutbound {
		return "host"
	}
	return "none"
}

// startJail starts a spare sandbox: for "node" and "python", one whose
// interpreter is already running its shim and waits to load a function;
// for "exec", an empty one that starts the function's program when told.
// Everything that is slow (namespaces, the root file system, joining a
// cgroup v1, starting an interpreter) happens here, off the request path.
func (l *Launcher) startJail(ctx context.Context, kind, network string) (*started, error) {
	addr, lnFile, err := l.listener()
	if err != nil {
		return nil, err
	}
	defer lnFile.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		removeSocket(addr)
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		removeSocket(addr)
		return nil, err
	}
	spec := sandbox.JailSpec{
		Network:  network,
		Listener: lnFile,
		Stdout:   outW,
		Stderr:   errW,
		// A spare starts at the lowest CPU weight, so that starting it
		// never slows instances serving requests; it gets its function's
		// weight when it becomes one.
		Limits: sandbox.Limits{PIDs: l.cfg.PIDs, CPUs: l.cfg.CPUs, Memory: int64(duct.DefaultMemory), Weight: 1},
	}
	// Every spare gets a shim control socket: interpreters say ready on
	// it, and so does a Go shim program started later.
	var ctrl net.Conn
	var childCtl *os.File
	{
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			outR.Close()
			outW.Close()
			errR.Close()
			errW.Close()
			removeSocket(addr)
			return nil, err
		}
		parentF := os.NewFile(uintptr(fds[0]), "control")
		childCtl = os.NewFile(uintptr(fds[1]), "control-child")
		ctrl, err = net.FileConn(parentF)
		parentF.Close()
		if err != nil {
			childCtl.Close()
			outR.Close()
			outW.Close()
			errR.Close()
			errW.Close()
			removeSocket(addr)
			return nil, err
		}
		spec.ShimControl = childCtl
	}
	env := append(baseEnv(), "DUCT_LISTEN_FD=3", "DUCT_CONTROL_FD=4")
	switch duct.Runtime(kind) {
	case duct.RuntimeNode:
		spec.Child = &sandbox.Child{Argv: []string{l.cfg.Node, l.cfg.NodeShim}, Env: env, Dir: "/tmp"}
	case duct.RuntimePython:
		spec.Child = &sandbox.Child{Argv: []string{l.cfg.Python, "-I", "-u", l.cfg.PythonShim}, Env: env, Dir: "/tmp"}
	}
	jail, err := l.cfg.Jailer.Start(spec)
	outW.Close()
	errW.Close()
	if childCtl != nil {
		childCtl.Close()
	}
	if err != nil {
		if ctrl != nil {
			ctrl.Close()
		}
		outR.Close()
		errR.Close()
		removeSocket(addr)
		return nil, err
	}
	logs := newLogPump(l.cfg.Logs, outR, errR)
	logs.start()
	s := &started{proc: jail, jail: jail, addr: addr, logs: logs, ctrl: ctrl, rd: bufio.NewReader(ctrl)}
	if spec.Child != nil {
		if err := s.awaitReady(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// launchJailed turns a spare sandbox into an instance of t: its limits,
// its artifact at /fn, its secret files, then its program.
func (l *Launcher) launchJailed(ctx context.Context, t *Target) (*started, error) {
	v := t.Version
	q := l.queue(l.spareKey(v.Spec))
	defer q.refillSoon()
	s, err := q.take(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(stage string, err error) (*started, error) {
		s.kill()
		return nil, fmt.Errorf("%s: %w", stage, err)
	}
	if err := s.jail.SetLimits(l.limits(v.Spec)); err != nil {
		return fail("limits", err)
	}
	if err := s.jail.Attach(t.Dir); err != nil {
		return fail("attach artifact", err)
	}
	if len(t.Files) > 0 {
		files := make([]sandbox.File, 0, len(t.Files))
		for name, data := range t.Files {
			files = append(files, sandbox.File{Name: name, Data: data})
		}
		if err := s.jail.WriteFiles(files); err != nil {
			return fail("secret files", err)
		}
	}
	switch {
	case v.Run.Protocol == duct.ProtocolShim && len(v.Run.Command) == 0:
		if err := l.load(ctx, s, t, jailArtifact); err != nil {
			return nil, err
		}
	case v.Run.Protocol == duct.ProtocolShim:
		// A Go shim program: it serves on the listener and says ready on
		// its control socket.
		env := append(t.env(), "DUCT_LISTEN_FD=3", "DUCT_CONTROL_FD=4")
		if err := s.jail.Exec(sandbox.Child{Argv: t.jailCommand(), Env: env, Dir: jailArtifact}, true); err != nil {
			return fail("start", s.failure("start", err))
		}
		if err := s.awaitReady(ctx); err != nil {
			return nil, err
		}
	case v.Run.Protocol == duct.ProtocolPort:
		env := append(t.env(), "PORT="+strconv.Itoa(jailPort))
		child := sandbox.Child{Argv: t.jailCommand(), Env: env, Dir: jailArtifact, RelayPort: jailPort}
		if err := s.jail.Exec(child, false); err != nil {
			return fail("start", s.failure("start", err))
		}
	default:
		return fail("start", fmt.Errorf("unknown protocol %q", v.Run.Protocol))
	}
	return s, nil
}

// limits are a function's sandbox limits: its memory, the server's PIDs
// and CPU quota, and a CPU weight that grows with memory, as Lambda's CPU
// share does.
func (l *Launcher) limits(spec duct.Function) sandbox.Limits {
	weight := int(int64(spec.Memory) * 100 / int64(duct.DefaultMemory))
	return sandbox.Limits{Memory: int64(spec.Memory), PIDs: l.cfg.PIDs, CPUs: l.cfg.CPUs, Weight: min(max(weight, 1), 10000)}
}

// jailCommand resolves argv[0] inside the sandbox: a path in the
// artifact, or a bare name on the sandbox's PATH.
func (t *Target) jailCommand() []string {
	argv := append([]string(nil), t.Version.Run.Command...)
	if len(argv) == 0 || path.IsAbs(argv[0]) {
		return argv
	}
	if _, err := os.Stat(t.Dir + "/" + argv[0]); err == nil || strings.ContainsRune(argv[0], '/') {
		argv[0] = path.Join(jailArtifact, argv[0])
		return argv
	}
	for _, dir := range instancePath {
		if st, err := os.Stat(path.Join(dir, argv[0])); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			argv[0] = path.Join(dir, argv[0])
			return argv
		}
	}
	argv[0] = path.Join(jailArtifact, argv[0])
	return argv
}
