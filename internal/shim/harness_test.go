package shim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// instance is a shim process started as Duct starts one: a listening
// socket on fd 3, a control socket on fd 4 and a clean environment.
type instance struct {
	t      testing.TB
	cmd    *exec.Cmd
	ctl    net.Conn
	ctlR   *bufio.Reader
	base   string
	client *http.Client
	logs   *lockedBuffer
	exited chan struct{}
	err    error // cmd.Wait's result, once exited is closed
}

type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs argv as an instance and waits for it to say ready.
func start(t testing.TB, argv []string, env ...string) *instance {
	t.Helper()
	in := startNoWait(t, argv, env...)
	in.waitReady()
	return in
}

func startNoWait(t testing.TB, argv []string, env ...string) *instance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // lf keeps the socket open and listening

	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	parent := os.NewFile(uintptr(fds[0]), "control")
	child := os.NewFile(uintptr(fds[1]), "control-child")
	ctl, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		t.Fatal(err)
	}

	in := &instance{
		t:      t,
		ctl:    ctl,
		ctlR:   bufio.NewReader(ctl),
		base:   fmt.Sprintf("http://%s", addr),
		logs:   &lockedBuffer{},
		exited: make(chan struct{}),
		client: newClient(),
	}
	in.cmd = exec.Command(argv[0], argv[1:]...)
	in.cmd.Env = append([]string{
		"PATH=/usr/bin:/bin",
		"HOME=" + t.TempDir(),
		fmt.Sprintf("PORT=%d", addr.Port),
		"DUCT_LISTEN_FD=3",
		"DUCT_CONTROL_FD=4",
		"PYTHONUNBUFFERED=1",
	}, env...)
	in.cmd.ExtraFiles = []*os.File{lf, child}
	in.cmd.Stdout = in.logs
	in.cmd.Stderr = in.logs
	err = in.cmd.Start()
	lf.Close()
	child.Close()
	if err != nil {
		ctl.Close()
		t.Fatal(err)
	}
	go func() {
		in.err = in.cmd.Wait()
		close(in.exited)
	}()
	t.Cleanup(in.stop)
	return in
}

func (in *instance) stop() {
	in.client.CloseIdleConnections()
	in.ctl.Close()
	select {
	case <-in.exited:
	case <-time.After(3 * time.Second):
		in.cmd.Process.Kill()
		<-in.exited
		in.t.Errorf("instance did not exit on control EOF; log:\n%s", in.logs)
	}
	if in.t.Failed() {
		in.t.Logf("instance log:\n%s", in.logs)
	}
}

// readControl reads one control message.
func (in *instance) readControl(timeout time.Duration) (map[string]interface{}, error) {
	in.ctl.SetReadDeadline(time.Now().Add(timeout))
	line, err := in.ctlR.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	var m map[string]interface{}
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("control message %q: %v", line, err)
	}
	return m, nil
}

func (in *instance) waitReady() {
	in.t.Helper()
	m, err := in.readControl(15 * time.Second)
	if err != nil {
		in.t.Fatalf("waiting for ready: %v; log:\n%s", err, in.logs)
	}
	if m["ready"] != true {
		in.t.Fatalf("first control message = %v, want ready", m)
	}
}

// load sends a load message and returns the shim's answer.
func (in *instance) load(msg map[string]interface{}) (ok bool, errMsg string) {
	in.t.Helper()
	msg["op"] = "load"
	b, _ := json.Marshal(msg)
	if _, err := in.ctl.Write(append(b, '\n')); err != nil {
		in.t.Fatal(err)
	}
	m, err := in.readControl(15 * time.Second)
	if err != nil {
		in.t.Fatalf("waiting for the load answer: %v; log:\n%s", err, in.logs)
	}
	s, _ := m["error"].(string)
	return m["ok"] == true, s
}

func (in *instance) mustLoad(msg map[string]interface{}) {
	in.t.Helper()
	if ok, e := in.load(msg); !ok {
		in.t.Fatalf("load failed: %s", e)
	}
}

// waitExit waits for the process to end and returns its exit code.
func (in *instance) waitExit(timeout time.Duration) int {
	in.t.Helper()
	select {
	case <-in.exited:
	case <-time.After(timeout):
		in.t.Fatalf("process still running after %v", timeout)
	}
	if in.err == nil {
		return 0
	}
	if ee, ok := in.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	in.t.Fatalf("wait: %v", in.err)
	return -1
}

// request is one HTTP exchange of a table test and what it must answer.
type request struct {
	name    string
	method  string // GET when empty
	path    string
	header  map[string]string
	body    string
	status  int
	headers map[string]string      // response headers that must match exactly
	text    *string                // exact body
	json    map[string]interface{} // keys the JSON body must hold, with values
}

func str(s string) *string { return &s }

func (in *instance) do(method, path string, header map[string]string, body string) (*http.Response, []byte, error) {
	if method == "" {
		method = "GET"
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, in.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func (in *instance) check(t *testing.T, tc request) {
	t.Helper()
	resp, body, err := in.do(tc.method, tc.path, tc.header, tc.body)
	if err != nil {
		t.Fatalf("%s %s: %v", tc.method, tc.path, err)
	}
	if resp.StatusCode != tc.status {
		t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, tc.status, body)
	}
	for k, want := range tc.headers {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if tc.text != nil && string(body) != *tc.text {
		t.Errorf("body = %q, want %q", body, *tc.text)
	}
	if tc.json != nil {
		var got map[string]interface{}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		for k, want := range tc.json {
			if !reflect.DeepEqual(got[k], normalize(want)) {
				t.Errorf("body[%q] = %#v, want %#v (body %s)", k, got[k], want, body)
			}
		}
	}
}

// normalize gives want the shape encoding/json decodes into.
func normalize(v interface{}) interface{} {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out interface{}
	json.Unmarshal(b, &out)
	return out
}

func runTable(t *testing.T, in *instance, table []request) {
	t.Helper()
	for _, tc := range table {
		t.Run(tc.name, func(t *testing.T) { in.check(t, tc) })
	}
}

// checkKeepAlive sends n requests one after another and checks that they
// shared one connection.
func checkKeepAlive(t *testing.T, in *instance, path string, n int) {
	t.Helper()
	in.client.CloseIdleConnections()
	fresh := 0
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			fresh++
		}
	}}
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest("GET", in.base+path, nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, err := in.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if fresh != 1 {
		t.Errorf("%d requests opened %d connections, want 1", n, fresh)
	}
}

// checkConcurrent sends n requests at once to a handler that answers only
// when n requests are in flight.
func checkConcurrent(t *testing.T, in *instance, path string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body, err := in.do("GET", path, nil, "")
			if err == nil && (resp.StatusCode != 200 || !strings.Contains(string(body), "true")) {
				err = fmt.Errorf("status %d body %q", resp.StatusCode, body)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// checkControlEOF checks that the process exits at once when the control
// socket closes.
func checkControlEOF(t *testing.T, in *instance) {
	t.Helper()
	in.ctl.Close()
	if code := in.waitExit(3 * time.Second); code != 0 {
		t.Errorf("exit code %d after control EOF, want 0", code)
	}
}

func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	// The shims and Go programs are shared by all tests, so they live
	// outside any one test's TempDir.
	for _, dir := range []string{installRoot, goRoot} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

var (
	installRoot  string
	installOnce  sync.Once
	installPaths Paths
	installErr   error
)

// shims installs the shims once per test binary.
func shims(t testing.TB) Paths {
	t.Helper()
	installOnce.Do(func() {
		installRoot, installErr = os.MkdirTemp("", "duct-shim-test-")
		if installErr == nil {
			installPaths, installErr = Install(installRoot)
		}
	})
	if installErr != nil {
		t.Fatal(installErr)
	}
	return installPaths
}

var (
	pythonOnce sync.Once
	pythonPath string
)

// pythonExe is the real Python interpreter: a version manager's python3
// wrapper costs more than the whole cold start. DUCT_TEST_PYTHON overrides
// it.
func pythonExe(t testing.TB) string {
	t.Helper()
	pythonOnce.Do(func() {
		if p := os.Getenv("DUCT_TEST_PYTHON"); p != "" {
			pythonPath = p
			return
		}
		out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
		if err == nil {
			pythonPath = strings.TrimSpace(string(out))
		}
	})
	if pythonPath == "" {
		t.Skip("no python3")
	}
	return pythonPath
}

func nodeExe(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node")
	}
	return p
}

func startNode(t testing.TB) *instance {
	t.Helper()
	return start(t, []string{nodeExe(t), shims(t).Node})
}

func startPython(t testing.TB) *instance {
	t.Helper()
	return start(t, []string{pythonExe(t), shims(t).Python})
}

func loadMsg(dir, entry, signature string) map[string]interface{} {
	return map[string]interface{}{
		"dir":       dir,
		"entry":     entry,
		"handler":   "handler",
		"signature": signature,
		"env":       map[string]string{"GREETING": "hi"},
		"function":  "hello",
		"version":   3,
		"memoryMB":  256,
		"timeoutMs": 60000,
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// doChunked posts body with chunked transfer encoding.
func (in *instance) doChunked(path, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequest("POST", in.base+path, struct{ io.Reader }{strings.NewReader(body)})
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
