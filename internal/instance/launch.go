package instance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/id"
	"github.com/duct-dev/duct/internal/sandbox"
)

// Config says how to start instances. Zero values get defaults in New.
type Config struct {
	// Node and Python are the interpreters (real paths, not version
	// manager shims); NodeShim and PythonShim the shim entry files.
	Node, Python         string
	NodeShim, PythonShim string
	// Spares is how many pre-started runtimes to keep per language in use.
	// 0 means 2; negative disables spares.
	Spares int
	// StartTimeout bounds how long an instance may take to become ready.
	// 0 means 30s.
	StartTimeout time.Duration
	// RunDir holds instances' Unix sockets; it should be private to
	// Duct's uid.
	RunDir string
	// StopGrace is how long a stopping instance gets after SIGTERM. 0
	// means 2s.
	StopGrace time.Duration
	// Jailer sandboxes every instance; nil runs them as plain processes
	// (--insecure-no-sandbox).
	Jailer *sandbox.Jailer
	// PIDs and CPUs bound each sandboxed instance: processes and threads,
	// and a CPU quota (0: none).
	PIDs   int64
	CPUs   float64
	Logs   duct.LogSink
	Logger *slog.Logger
}

// Target is what to launch: a version and where its artifact is on disk.
type Target struct {
	Version *duct.Version
	Dir     string            // extracted artifact root
	Env     map[string]string // the function's environment
	// Files are secret files shown to the function in /run/secrets
	// (sandboxed instances only).
	Files map[string][]byte
}

// Launcher starts instances. It is safe for concurrent use.
type Launcher struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex             // guards spares
	spares map[string]*spareQueue // by spareKey

	ownRunDir string // a short run directory made by New, removed by Close
}

// New returns a Launcher for cfg.
func New(cfg Config) *Launcher {
	if cfg.Spares == 0 {
		cfg.Spares = 2
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Launcher{cfg: cfg, log: cfg.Logger, spares: map[string]*spareQueue{}}
	// A Unix socket's path must fit in 108 bytes. A run directory too deep
	// for that gets a short private stand-in: abstract sockets would do,
	// but any process in the host's network namespace (a function with
	// network: outbound) could connect to those.
	if len(filepath.Join(cfg.RunDir, id.Short()+".sock")) >= maxSocketPath {
		if dir, err := os.MkdirTemp("", "duct-run-"); err == nil {
			l.log.Info("run directory path too long for Unix sockets; using a short one", "dir", dir)
			l.cfg.RunDir, l.ownRunDir = dir, dir
		}
	}
	return l
}

// maxSocketPath is the longest Unix socket path the kernel takes, less
// its terminating NUL.
const maxSocketPath = 107

// Sandboxed reports whether instances run in sandboxes.
func (l *Launcher) Sandboxed() bool { return l.cfg.Jailer != nil }

// StopGrace is the configured grace period for stopping instances.
func (l *Launcher) StopGrace() time.Duration { return l.cfg.StopGrace }

// Warm starts keeping spares for functions like spec (one of that
// runtime and network exists).
func (l *Launcher) Warm(spec duct.Function) {
	if q := l.queue(l.spareKey(spec)); q != nil {
		q.refill()
	}
}

// SparesReady counts pre-started instances waiting to become functions
// like spec.
func (l *Launcher) SparesReady(spec duct.Function) int {
	l.mu.Lock()
	q := l.spares[l.spareKey(spec)]
	l.mu.Unlock()
	if q == nil {
		return 0
	}
	return len(q.ready)
}

// Close stops all spares.
func (l *Launcher) Close() {
	l.mu.Lock()
	qs := l.spares
	l.spares = map[string]*spareQueue{}
	l.mu.Unlock()
	for _, q := range qs {
		q.close()
	}
	if l.ownRunDir != "" {
		os.RemoveAll(l.ownRunDir)
	}
}

// spareKey names the kind of spare a function starts from: its language
// runtime (a pre-started interpreter) or, in a sandbox, "exec" (a bare
// sandbox that runs the function's program when told), and its network.
// Empty means the function does not use spares.
func (l *Launcher) spareKey(spec duct.Function) string {
	kind := ""
	switch {
	case spec.Runtime == duct.RuntimeNode || spec.Runtime == duct.RuntimePython:
		kind = string(spec.Runtime)
	case l.cfg.Jailer != nil:
		kind = "exec"
	default:
		return ""
	}
	if l.cfg.Jailer == nil {
		return kind
	}
	return kind + "/" + jailNetwork(spec)
}

func (l *Launcher) queue(key string) *spareQueue {
	if key == "" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.spares[key]
	if q == nil {
		q = &spareQueue{l: l, key: key, want: max(l.cfg.Spares, 0)}
		q.ready = make(chan *started, max(q.want, 1))
		l.spares[key] = q
	}
	return q
}

// startSpare starts one spare of kind key.
func (l *Launcher) startSpare(ctx context.Context, key string) (*started, error) {
	kind, network, _ := strings.Cut(key, "/")
	if l.cfg.Jailer != nil {
		return l.startJail(ctx, kind, network)
	}
	switch duct.Runtime(kind) {
	case duct.RuntimeNode:
		return l.start(ctx, []string{l.cfg.Node, l.cfg.NodeShim}, baseEnv(), "/", true)
	case duct.RuntimePython:
		return l.start(ctx, []string{l.cfg.Python, "-I", "-u", l.cfg.PythonShim}, baseEnv(), "/", true)
	}
	return nil, fmt.Errorf("no spare of kind %q", key)
}

// baseEnv is every instance's environment before the function's own.
func baseEnv() []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=/tmp",
		"TMPDIR=/tmp",
		"LANG=C.UTF-8",
		"PYTHONUNBUFFERED=1",
		"PYTHONDONTWRITEBYTECODE=1",
		"NODE_ENV=production",
	}
}

// Launch starts an instance of t and waits until it is ready to serve.
func (l *Launcher) Launch(ctx context.Context, t *Target) (*Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.StartTimeout)
	defer cancel()
	v := t.Version
	begin := time.Now()
	var (
		s   *started
		err error
	)
	switch {
	case l.cfg.Jailer != nil:
		s, err = l.launchJailed(ctx, t)
	case v.Run.Protocol == duct.ProtocolShim && len(v.Run.Command) == 0:
		s, err = l.fromSpare(ctx, t)
	case v.Run.Protocol == duct.ProtocolShim:
		s, err = l.start(ctx, t.command(), t.env(), t.Dir, true)
	case v.Run.Protocol == duct.ProtocolPort:
		s, err = l.startPort(ctx, t)
	default:
		err = fmt.Errorf("unknown protocol %q", v.Run.Protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s version %d: %w", duct.ErrInitFailed, v.Function, v.Number, err)
	}
	inst := &Instance{
		ID:           id.Short(),
		Function:     v.Function,
		Version:      v.Number,
		Addr:         s.addr,
		StartedAt:    begin,
		InitDuration: time.Since(begin),
		proc:         s.proc,
		jail:         s.jail,
		ctrl:         s.ctrl,
		logs:         s.logs,
		client:       newClient(s.addr),
	}
	s.logs.identify(v.Function, v.Number, inst.ID)
	what := "instance"
	if v.Number == 0 {
		what = "deploy check: instance" // not yet a version
	}
	s.logs.platform(fmt.Sprintf("%s %s started in %s", what, inst.ID, inst.InitDuration.Round(10*time.Microsecond)))
	return inst, nil
}

// command resolves argv[0]: a path in the artifact, or a bare name looked
// up on the instance's PATH (command: [python3, app.py]).
func (t *Target) command() []string {
	argv := append([]string(nil), t.Version.Run.Command...)
	if len(argv) == 0 || filepath.IsAbs(argv[0]) {
		return argv
	}
	local := filepath.Join(t.Dir, argv[0])
	if _, err := os.Stat(local); err == nil || strings.ContainsRune(argv[0], '/') {
		argv[0] = local
		return argv
	}
	for _, dir := range instancePath {
		if st, err := os.Stat(filepath.Join(dir, argv[0])); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			argv[0] = filepath.Join(dir, argv[0])
			return argv
		}
	}
	argv[0] = local // fails to start with a clear "no such file"
	return argv
}

// instancePath is the PATH instances get.
var instancePath = []string{"/usr/local/bin", "/usr/bin", "/bin"}

func (t *Target) env() []string {
	env := baseEnv()
	for k, val := range t.Env {
		env = append(env, k+"="+val)
	}
	v := t.Version
	env = append(env,
		"DUCT_FUNCTION="+v.Function,
		"DUCT_VERSION="+strconv.Itoa(v.Number),
		"DUCT_HANDLER="+v.Spec.Handler,
		"DUCT_SIGNATURE="+string(v.Spec.Signature),
		"DUCT_MEMORY_MB="+strconv.FormatInt(int64(v.Spec.Memory/duct.MiB), 10),
	)
	return env
}

// proc is an instance's process: a plain one, or a sandbox.
type proc interface {
	PID() int
	Done() <-chan struct{}
	Exited() bool
	ExitReason() string
	Kill()
	Stop(grace time.Duration)
	PeakMemory() int64
}

// started is a process that has reached ready.
type started struct {
	proc proc
	jail *sandbox.Jail // nil when not sandboxed
	addr string
	ctrl net.Conn
	rd   *bufio.Reader
	logs *logPump
}

func (s *started) kill() {
	s.proc.Kill()
	removeSocket(s.addr)
	if s.ctrl != nil {
		s.ctrl.Close()
	}
}

// start starts argv with a pre-bound listener on fd 3 and a control socket
// on fd 4, and waits for the shim's ready line.
func (l *Launcher) start(ctx context.Context, argv, env []string, dir string, shimReady bool) (*started, error) {
	if len(argv) == 0 {
		return nil, errors.New("no command")
	}
	addr, lnFile, err := l.listener()
	if err != nil {
		return nil, err
	}
	// Until the child holds them, these are ours to close; after Start,
	// the parent's copies go at once, so that a child dying early shows
	// as end-of-file on the control socket rather than a silent wait.
	var cleanup []io.Closer
	undo := func() {
		for _, c := range cleanup {
			c.Close()
		}
		removeSocket(addr)
	}
	cleanup = append(cleanup, lnFile)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		undo()
		return nil, err
	}
	parentF := os.NewFile(uintptr(fds[0]), "control")
	childF := os.NewFile(uintptr(fds[1]), "control-child")
	cleanup = append(cleanup, childF)
	ctrl, err := net.FileConn(parentF)
	parentF.Close()
	if err != nil {
		undo()
		return nil, err
	}
	cleanup = append(cleanup, ctrl)
	outR, outW, err := os.Pipe()
	if err != nil {
		undo()
		return nil, err
	}
	cleanup = append(cleanup, outR, outW)
	errR, errW, err := os.Pipe()
	if err != nil {
		undo()
		return nil, err
	}
	env = append(env, "DUCT_LISTEN_FD=3", "DUCT_CONTROL_FD=4")
	proc, err := sandbox.Start(sandbox.Spec{
		Path:       argv[0],
		Args:       argv,
		Env:        env,
		Dir:        dir,
		ExtraFiles: []*os.File{lnFile, childF},
		Stdout:     outW,
		Stderr:     errW,
	})
	lnFile.Close()
	childF.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		ctrl.Close()
		outR.Close()
		errR.Close()
		removeSocket(addr)
		return nil, err
	}
	logs := newLogPump(l.cfg.Logs, outR, errR)
	logs.start()
	s := &started{proc: proc, addr: addr, ctrl: ctrl, rd: bufio.NewReader(ctrl), logs: logs}
	if shimReady {
		if err := s.awaitReady(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// awaitReady waits for the shim's ready line; on failure the process is
// killed and the error says what it wrote.
func (s *started) awaitReady(ctx context.Context) error {
	var msg struct {
		Ready bool `json:"ready"`
	}
	if err := s.await(ctx, &msg); err != nil || !msg.Ready {
		s.kill()
		return s.failure("waiting for ready", err)
	}
	return nil
}

// await reads one JSON line from the control socket, bounded by ctx and
// by the process exiting.
func (s *started) await(ctx context.Context, v any) error {
	type result struct {
		line []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := s.rd.ReadBytes('\n')
		ch <- result{line, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return r.err
		}
		return json.Unmarshal(r.line, v)
	case <-s.proc.Done():
		s.ctrl.SetReadDeadline(time.Now())
		<-ch
		s.ctrl.SetReadDeadline(time.Time{})
		return errors.New("process exited")
	case <-ctx.Done():
		s.ctrl.SetReadDeadline(time.Now())
		<-ch
		s.ctrl.SetReadDeadline(time.Time{})
		return ctx.Err()
	}
}

// failure builds a start-up error with what the process said.
func (s *started) failure(stage string, err error) error {
	if s.proc.Exited() || errors.Is(err, context.DeadlineExceeded) || err != nil {
		select {
		case <-s.proc.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	var b strings.Builder
	if errors.Is(err, context.DeadlineExceeded) {
		b.WriteString("did not become ready in time")
	} else if s.proc.Exited() {
		b.WriteString("process " + s.proc.ExitReason())
	} else if err != nil {
		b.WriteString(stage + ": " + err.Error())
	}
	if tail := s.logs.recent(); len(tail) > 0 {
		b.WriteString("; output:\n" + strings.Join(tail, "\n"))
	}
	return errors.New(b.String())
}

type loadMsg struct {
	Op        string            `json:"op"`
	Dir       string            `json:"dir"`
	Entry     string            `json:"entry"`
	Handler   string            `json:"handler"`
	Signature duct.Signature    `json:"signature"`
	Env       map[string]string `json:"env"`
	Function  string            `json:"function"`
	Version   int               `json:"version"`
	MemoryMB  int64             `json:"memoryMB"`
	TimeoutMs int64             `json:"timeoutMs"`
}

// fromSpare specialises a pre-started runtime for t.
func (l *Launcher) fromSpare(ctx context.Context, t *Target) (*started, error) {
	q := l.queue(l.spareKey(t.Version.Spec))
	if q == nil {
		return nil, fmt.Errorf("runtime %q has no shim", t.Version.Spec.Runtime)
	}
	defer q.refillSoon()
	s, err := q.take(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.load(ctx, s, t, t.Dir); err != nil {
		return nil, err
	}
	return s, nil
}

// load turns a spare runtime into an instance of t, its artifact at dir.
func (l *Launcher) load(ctx context.Context, s *started, t *Target, dir string) error {
	v := t.Version
	env := map[string]string{
		"DUCT_FUNCTION":  v.Function,
		"DUCT_VERSION":   strconv.Itoa(v.Number),
		"DUCT_HANDLER":   v.Spec.Handler,
		"DUCT_SIGNATURE": string(v.Spec.Signature),
		"DUCT_MEMORY_MB": strconv.FormatInt(int64(v.Spec.Memory/duct.MiB), 10),
	}
	for k, val := range t.Env {
		env[k] = val
	}
	msg, _ := json.Marshal(loadMsg{
		Op: "load", Dir: dir, Entry: v.Run.Entry, Handler: v.Spec.Handler,
		Signature: v.Spec.Signature, Env: env, Function: v.Function, Version: v.Number,
		MemoryMB: int64(v.Spec.Memory / duct.MiB), TimeoutMs: v.Spec.Timeout.D().Milliseconds(),
	})
	if _, err := s.ctrl.Write(append(msg, '\n')); err != nil {
		s.kill()
		return s.failure("load", err)
	}
	var reply struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := s.await(ctx, &reply); err != nil {
		s.kill()
		return s.failure("load", err)
	}
	if !reply.OK {
		s.kill()
		return errors.New(reply.Error)
	}
	return nil
}

// startPort starts a bring-your-own server and polls $PORT until it
// accepts connections.
func (l *Launcher) startPort(ctx context.Context, t *Target) (*started, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	argv := t.command()
	env := append(t.env(), "PORT="+strconv.Itoa(port))
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	proc, err := sandbox.Start(sandbox.Spec{Path: argv[0], Args: argv, Env: env, Dir: t.Dir, Stdout: outW, Stderr: errW})
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	logs := newLogPump(l.cfg.Logs, outR, errR)
	logs.start()
	s := &started{proc: proc, addr: "tcp:" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), logs: logs}
	wait := 500 * time.Microsecond
	for {
		c, err := dial(s.addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-ctx.Done():
			s.kill()
			return nil, s.failure("waiting for $PORT", ctx.Err())
		case <-proc.Done():
			return nil, s.failure("waiting for $PORT", nil)
		case <-time.After(wait):
		}
		wait = min(wait*2, 20*time.Millisecond)
	}
}

// listener makes the socket an instance serves on: a Unix socket in the
// run directory (only Duct's uid can connect; no TCP stack on the hot
// path). It returns the address to dial and the fd to hand down.
func (l *Launcher) listener() (string, *os.File, error) {
	if l.cfg.RunDir == "" {
		return "", nil, errors.New("no run directory for instance sockets")
	}
	path := filepath.Join(l.cfg.RunDir, id.Short()+".sock")
	if len(path) >= maxSocketPath {
		return "", nil, fmt.Errorf("socket path %s is too long for a Unix socket", path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return "", nil, err
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	f, err := ul.File()
	ul.Close()
	if err != nil {
		os.Remove(path)
		return "", nil, err
	}
	return "unix:" + path, f, nil
}

// dial connects to an instance address, "unix:PATH" or "tcp:HOST:PORT".
func dial(addr string, timeout time.Duration) (net.Conn, error) {
	network, a, _ := strings.Cut(addr, ":")
	return net.DialTimeout(network, a, timeout)
}

// removeSocket deletes a Unix socket file once its instance is gone.
func removeSocket(addr string) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok && !strings.HasPrefix(p, "@") {
		os.Remove(p)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
