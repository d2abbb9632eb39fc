package shim

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// goFunction is the user's package of the Go tests: one handler of each
// kind, served by a program per handler.
const goFunction = `package function

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

var (
	mu      sync.Mutex
	waiting = map[string]chan struct{}{}
	counts  = map[string]int{}
)

func Handle(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/echo":
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]interface{}{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.Query(), "body": string(body),
			"invocation": r.Header.Get("X-Duct-Invocation-Id"),
		})
	case "/status":
		w.Header().Set("X-A", "1")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "created")
	case "/flush":
		_, ok := w.(http.Flusher)
		io.WriteString(w, map[bool]string{true: "flusher", false: "no flusher"}[ok])
	case "/panic":
		w.Header().Set("X-Lost", "1")
		panic("boom")
	case "/panic-after-write":
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic("late boom")
	case "/barrier":
		n := r.URL.Query().Get("n")
		mu.Lock()
		ch, ok := waiting[n]
		if !ok {
			ch = make(chan struct{})
			waiting[n] = ch
		}
		counts[n]++
		if want, _ := json.Number(n).Int64(); int64(counts[n]) == want {
			close(ch)
		}
		mu.Unlock()
		select {
		case <-ch:
			io.WriteString(w, "together: true")
		case <-time.After(5 * time.Second):
			io.WriteString(w, "alone")
		}
	case "/noop":
	case "/slow":
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "slept")
	default:
		http.NotFound(w, r)
	}
}

type Input struct {
	Name string ` + "`json:\"name\"`" + `
	Fail bool   ` + "`json:\"fail\"`" + `
}

type Output struct {
	Greeting   string ` + "`json:\"greeting\"`" + `
	DeadlineMs int64  ` + "`json:\"deadlineMs\"`" + `
}

type NameError struct{ Name string }

func (e *NameError) Error() string { return "cannot greet " + e.Name }

func Greet(ctx context.Context, in Input) (Output, error) {
	if in.Fail {
		return Output{}, &NameError{in.Name}
	}
	if in.Name == "panic" {
		panic("greet panicked")
	}
	out := Output{Greeting: "hello " + in.Name}
	if d, ok := ctx.Deadline(); ok {
		out.DeadlineMs = d.UnixNano() / int64(time.Millisecond)
	}
	return out, nil
}

func Shout(s string) (*string, error) {
	if s == "" {
		return nil, nil
	}
	u := s + "!"
	return &u, nil
}

func Nothing(ctx context.Context) error { return nil }

func Fails(ctx context.Context) error { return errors.New("plain failure") }

func OnEvent(ctx context.Context, e event.Event) (map[string]interface{}, error) {
	return map[string]interface{}{
		"id": e.ID, "source": e.Source, "type": e.Type, "subject": e.Subject,
		"datacontenttype": e.DataContentType, "data": string(e.Data), "base64": e.DataBase64,
		"extensions": e.Extensions,
	}, nil
}

func Bad(a, b string) int { return 0 }
`

// fakeEvent stands in for the CloudEvents SDK's event.Event: the shim only
// relies on its package path, its name and its JSON decoding.
const fakeEvent = `package event

import (
	"encoding/base64"
	"encoding/json"
	"errors"
)

type Event struct {
	ID, Source, Type, Subject, DataContentType string
	Data                                       []byte
	DataBase64                                 bool
	Extensions                                 map[string]string
}

func (e *Event) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	str := func(k string) string {
		var s string
		json.Unmarshal(m[k], &s)
		delete(m, k)
		return s
	}
	if str("specversion") != "1.0" {
		return errors.New("not a CloudEvent 1.0")
	}
	e.ID, e.Source, e.Type, e.Subject, e.DataContentType = str("id"), str("source"), str("type"), str("subject"), str("datacontenttype")
	str("time")
	if _, ok := m["data_base64"]; ok {
		e.Data, _ = base64.StdEncoding.DecodeString(str("data_base64"))
		e.DataBase64 = true
	} else if raw, ok := m["data"]; ok {
		if e.DataContentType == "" || e.DataContentType == "application/json" {
			e.Data = raw
		} else {
			e.Data = []byte(str("data"))
		}
		delete(m, "data")
	}
	e.Extensions = map[string]string{}
	for k := range m {
		e.Extensions[k] = str(k)
	}
	return nil
}
`

var goHandlers = []string{"Handle", "Greet", "Shout", "Nothing", "Fails", "OnEvent", "Bad"}

var (
	goRoot      string
	goBuildOnce sync.Once
	goBinDir    string
	goBuildErr  error
)

// goBinary returns the program built around the Go test function's handler
// of that name. All are built once per test binary, in one go build.
func goBinary(t testing.TB, handler string) string {
	t.Helper()
	goBuildOnce.Do(func() {
		goRoot, goBuildErr = os.MkdirTemp("", "duct-gofn-")
		if goBuildErr == nil {
			goBinDir, goBuildErr = buildGo(goRoot)
		}
	})
	if goBuildErr != nil {
		t.Fatal(goBuildErr)
	}
	return filepath.Join(goBinDir, strings.ToLower(handler))
}

func buildGo(root string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	files := map[string]string{
		// go 1.16: the generated files must compile under old language versions.
		"go.mod": "module example.com/fn\n\ngo 1.16\n\nrequire github.com/cloudevents/sdk-go/v2 v2.0.0\n\n" +
			"replace github.com/cloudevents/sdk-go/v2 => ./cesdk\n",
		"fn.go":             goFunction,
		"cesdk/go.mod":      "module github.com/cloudevents/sdk-go/v2\n\ngo 1.16\n",
		"cesdk/event/ev.go": fakeEvent,
	}
	pkgs := []string{}
	for _, h := range goHandlers {
		gen, err := GoFiles("example.com/fn", h)
		if err != nil {
			return "", err
		}
		dir := "ductmain/" + strings.ToLower(h)
		for name, b := range gen {
			files[dir+"/"+name] = string(b)
		}
		pkgs = append(pkgs, "./"+dir)
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(root, "bin")
	cmd := exec.Command(goTool, append([]string{"build", "-o", bin + "/"}, pkgs...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

func startGo(t testing.TB, handler string) *instance {
	t.Helper()
	return start(t, []string{goBinary(t, handler)})
}

func TestGoHTTP(t *testing.T) {
	t.Parallel()
	in := startGo(t, "Handle")
	runTable(t, in, []request{
		{name: "echo", method: "POST", path: "/echo?a=1&a=2", body: "payload",
			header: map[string]string{"X-Duct-Invocation-Id": "inv-3"}, status: 200,
			json: map[string]interface{}{"method": "POST", "path": "/echo", "body": "payload", "invocation": "inv-3",
				"query": map[string][]string{"a": {"1", "2"}}}},
		{name: "status and header", path: "/status", status: 201, headers: map[string]string{"X-A": "1"}, text: str("created")},
		{name: "optional interfaces kept", path: "/flush", status: 200, text: str("flusher")},
		{name: "panic", path: "/panic", status: 500,
			headers: map[string]string{"Content-Type": "text/plain; charset=utf-8", "X-Lost": ""}, text: str("Internal Server Error")},
		{name: "after the panic", path: "/status", status: 201, text: str("created")},
		{name: "not found", path: "/nope", status: 404},
	})
	t.Run("panic after writing aborts", func(t *testing.T) {
		_, _, err := in.do("GET", "/panic-after-write", nil, "")
		if err == nil {
			t.Error("a response cut by a panic read as complete")
		}
	})
	t.Run("keep-alive", func(t *testing.T) { checkKeepAlive(t, in, "/noop", 20) })
	t.Run("concurrent", func(t *testing.T) { checkConcurrent(t, in, "/barrier?n=16", 16) })
	if logs := in.logs.String(); !strings.Contains(logs, "panic: boom") || !strings.Contains(logs, "fn.go:") {
		t.Errorf("log lacks the panic's stack:\n%s", logs)
	}
	checkControlEOF(t, in)
}

func TestGoEvent(t *testing.T) {
	t.Parallel()
	deadline := time.Now().Add(time.Hour).UnixMilli()
	tests := []struct {
		handler string
		request
	}{
		{"Greet", request{name: "plain json", method: "POST", path: "/", body: `{"name":"ada"}`,
			header: map[string]string{"X-Duct-Deadline-Ms": itoa(deadline)}, status: 200,
			headers: map[string]string{"Content-Type": "application/json"},
			json:    map[string]interface{}{"greeting": "hello ada", "deadlineMs": deadline}}},
		{"Greet", request{name: "binary CloudEvent data", method: "POST", path: "/", body: `{"name":"bob"}`,
			header: map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "s", "Ce-Type": "t",
				"Content-Type": "application/json"}, status: 200,
			json: map[string]interface{}{"greeting": "hello bob", "deadlineMs": 0}}},
		{"Greet", request{name: "structured CloudEvent data", method: "POST", path: "/",
			body:   `{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"name":"cy"}}`,
			header: map[string]string{"Content-Type": "application/cloudevents+json"}, status: 200,
			json: map[string]interface{}{"greeting": "hello cy"}}},
		{"Greet", request{name: "structured base64 data", method: "POST", path: "/",
			body:   `{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"eyJuYW1lIjoiZGkifQ=="}`,
			header: map[string]string{"Content-Type": "application/cloudevents+json"}, status: 200,
			json: map[string]interface{}{"greeting": "hello di"}}},
		{"Greet", request{name: "empty body", method: "POST", path: "/", status: 200,
			json: map[string]interface{}{"greeting": "hello "}}},
		{"Greet", request{name: "invalid input", method: "POST", path: "/", body: `{"name":`, status: 400,
			json: map[string]interface{}{"errorType": "InvalidEvent"}}},
		{"Greet", request{name: "returned error", method: "POST", path: "/", body: `{"name":"eve","fail":true}`, status: 500,
			headers: map[string]string{"Content-Type": "application/json"},
			json:    map[string]interface{}{"errorType": "NameError", "errorMessage": "cannot greet eve"}}},
		{"Greet", request{name: "panic", method: "POST", path: "/", body: `{"name":"panic"}`, status: 500,
			json: map[string]interface{}{"errorType": "Panic", "errorMessage": "greet panicked"}}},
		{"Shout", request{name: "text input", method: "POST", path: "/", body: "hey",
			header: map[string]string{"Content-Type": "text/plain"}, status: 200, text: str(`"hey!"`)}},
		{"Shout", request{name: "json string input", method: "POST", path: "/", body: `"ho"`, status: 200, text: str(`"ho!"`)}},
		{"Shout", request{name: "nil pointer result", method: "POST", path: "/", status: 204, text: str("")}},
		{"Nothing", request{name: "no result", method: "POST", path: "/", body: `{"x":1}`, status: 204, text: str("")}},
		{"Fails", request{name: "plain error", method: "POST", path: "/", status: 500,
			json: map[string]interface{}{"errorType": "errorString", "errorMessage": "plain failure"}}},
	}
	instances := map[string]*instance{}
	for _, tc := range tests {
		if instances[tc.handler] == nil {
			instances[tc.handler] = startGo(t, tc.handler)
		}
		in := instances[tc.handler]
		t.Run(tc.handler+"/"+tc.name, func(t *testing.T) { in.check(t, tc.request) })
	}
	if logs := instances["Greet"].logs.String(); !strings.Contains(logs, "error: cannot greet eve") || !strings.Contains(logs, "panic: greet panicked") {
		t.Errorf("log lacks the handler's errors:\n%s", logs)
	}
}

func TestGoCloudEvent(t *testing.T) {
	t.Parallel()
	in := startGo(t, "OnEvent")
	runTable(t, in, []request{
		{name: "binary", method: "POST", path: "/", body: `{"temp":21}`,
			header: map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "e1", "Ce-Source": "/sensors", "Ce-Type": "reading",
				"Ce-Subject": "room%201", "Ce-Traceparent": "00-abc", "Content-Type": "application/json"}, status: 200,
			json: map[string]interface{}{"id": "e1", "source": "/sensors", "type": "reading", "subject": "room 1",
				"datacontenttype": "application/json", "data": `{"temp":21}`, "base64": false,
				"extensions": map[string]string{"traceparent": "00-abc"}}},
		{name: "binary text", method: "POST", path: "/", body: "hello",
			header: map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "e2", "Ce-Source": "s", "Ce-Type": "t",
				"Content-Type": "text/plain"}, status: 200,
			json: map[string]interface{}{"id": "e2", "datacontenttype": "text/plain", "data": "hello", "base64": false}},
		{name: "binary bytes", method: "POST", path: "/", body: "\xff\x00",
			header: map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "e3", "Ce-Source": "s", "Ce-Type": "t",
				"Content-Type": "application/octet-stream"}, status: 200,
			json: map[string]interface{}{"id": "e3", "data": "\xff\x00", "base64": true}},
		{name: "structured", method: "POST", path: "/",
			body:   `{"specversion":"1.0","id":"e4","source":"s","type":"t","datacontenttype":"application/json","data":{"k":1}}`,
			header: map[string]string{"Content-Type": "application/cloudevents+json"}, status: 200,
			json: map[string]interface{}{"id": "e4", "data": `{"k":1}`}},
		{name: "plain request", method: "POST", path: "/", body: `{"k":2}`,
			header: map[string]string{"X-Duct-Invocation-Id": "inv-7"}, status: 200,
			json: map[string]interface{}{"id": "inv-7", "source": "duct", "type": "duct.invoke",
				"datacontenttype": "application/json", "data": `{"k":2}`}},
		{name: "not a CloudEvent", method: "POST", path: "/", body: `{"specversion":"0.1"}`,
			header: map[string]string{"Content-Type": "application/cloudevents+json"}, status: 400,
			json: map[string]interface{}{"errorType": "InvalidEvent"}},
	})
}

func TestGoUnsupported(t *testing.T) {
	t.Parallel()
	in := startNoWait(t, []string{goBinary(t, "Bad")})
	if code := in.waitExit(5 * time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if _, err := in.readControl(time.Second); err == nil {
		t.Error("an unsupported handler said ready")
	}
	want := "duct: example.com/fn.Bad: unsupported signature func(string, string) int"
	if logs := in.logs.String(); !strings.Contains(logs, want) {
		t.Errorf("log %q lacks %q", logs, want)
	}

	for handler, ok := range map[string]bool{"Bad": false, "Greet": true, "Handle": true} {
		cmd := exec.Command(goBinary(t, handler))
		cmd.Env = []string{"DUCT_CHECK=1"}
		out, err := cmd.CombinedOutput()
		if (err == nil) != ok {
			t.Errorf("DUCT_CHECK of %s: %v %s", handler, err, out)
		}
	}
}

// TestGoStandalone runs the program without fd 3 and fd 4: it binds
// 127.0.0.1:$PORT itself, and SIGTERM stops it cleanly.
func TestGoStandalone(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cmd := exec.Command(goBinary(t, "Handle"))
	cmd.Env = []string{"PORT=" + port}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in := &instance{t: t, base: "http://127.0.0.1:" + port, client: newClient()}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, body, err := in.do("GET", "/status", nil, "")
		if err == nil {
			if resp.StatusCode != 201 || string(body) != "created" {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v", err)
	}
}

// TestSIGTERM checks that every shim lets a request in progress finish when
// sent SIGTERM, then exits with status 0.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *instance
	}{
		{"node", func(t *testing.T) *instance {
			dir := writeTree(t, map[string]string{"index.js": nodeHTTPHandler})
			in := startNode(t)
			in.mustLoad(loadMsg(dir, "index.js", "http"))
			return in
		}},
		{"python", func(t *testing.T) *instance {
			dir := writeTree(t, map[string]string{"main.py": pythonHTTPHandler})
			in := startPython(t)
			in.mustLoad(loadMsg(dir, "main.py", "http"))
			return in
		}},
		{"go", func(t *testing.T) *instance { return startGo(t, "Handle") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := tc.start(t)
			done := make(chan string, 1)
			go func() {
				resp, body, err := in.do("GET", "/slow", nil, "")
				if err != nil {
					done <- err.Error()
					return
				}
				done <- fmt.Sprintf("%d %s", resp.StatusCode, body)
			}()
			time.Sleep(100 * time.Millisecond)
			in.cmd.Process.Signal(syscall.SIGTERM)
			if got := <-done; got != "200 slept" {
				t.Errorf("request in progress at SIGTERM: %s", got)
			}
			if code := in.waitExit(3 * time.Second); code != 0 {
				t.Errorf("exit code %d after SIGTERM, want 0", code)
			}
		})
	}
}

// TestGoColdStart logs how long the Go program takes from spawn to its
// first response.
func TestGoColdStart(t *testing.T) {
	t.Parallel()
	bin := goBinary(t, "Handle")
	t0 := time.Now()
	in := start(t, []string{bin})
	ready := time.Since(t0)
	resp, _, err := in.do("GET", "/status", nil, "")
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("%v %v", resp, err)
	}
	t.Logf("go: spawn→ready %v, spawn→first response %v", ready, time.Since(t0))
}
