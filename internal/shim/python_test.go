package shim

import (
	"strings"
	"testing"
	"time"
)

const pythonHTTPHandler = `
import os
import threading

_barrier = {}
_lock = threading.Lock()


def handler(request):
    p = request.path
    if p == "/echo":
        return {
            "method": request.method, "path": p, "query": request.args, "all": request.args.getlist("a"),
            "qs": request.query_string.decode(), "json": request.json, "text": request.data.decode("latin-1"),
            "contentType": request.headers.get("Content-Type"), "invocation": request.invocation_id,
            "deadline": request.headers.get("X-DUCT-DEADLINE-MS"), "hasHeader": "x-duct-invocation-id" in request.headers,
        }
    if p == "/status":
        return "created", 201, {"X-A": "1"}
    if p == "/tuple-two":
        return "teapot", 418
    if p == "/headers-only":
        return "hi", {"Content-Type": "text/html"}
    if p == "/bytes":
        return bytes([0, 1, 2, 255])
    if p == "/list":
        return [1, "two"]
    if p == "/none":
        return None
    if p == "/none-status":
        return None, 202
    if p == "/raise":
        raise ValueError("boom")
    if p == "/bad-return":
        return object()
    if p == "/env":
        return {"greeting": os.environ.get("GREETING"), "cwd": os.getcwd()}
    if p == "/noop":
        return ""
    if p == "/slow":
        import time
        time.sleep(0.3)
        return "slept"
    if p == "/async":
        return async_part(request)
    if p == "/unicode":
        return "héllo ✓"
    if p == "/barrier":
        n = int(request.args["n"])
        with _lock:
            b = _barrier.setdefault(n, threading.Barrier(n, timeout=5))
        b.wait()
        return {"together": True}
    return "not found", 404


async def async_part(request):
    import asyncio
    await asyncio.sleep(0.001)
    return {"async": True, "path": request.path}
`

func TestPythonHTTP(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"main.py": pythonHTTPHandler})
	in := startPython(t)
	in.mustLoad(loadMsg(dir, "main.py", "http"))

	runTable(t, in, []request{
		{name: "query and no body", path: "/echo?a=1&b=x%20y&a=2", status: 200,
			headers: map[string]string{"Content-Type": "application/json"},
			json: map[string]interface{}{"method": "GET", "path": "/echo", "query": map[string]string{"a": "1", "b": "x y"},
				"all": []string{"1", "2"}, "qs": "a=1&b=x%20y&a=2", "json": nil, "text": ""}},
		{name: "json body", method: "POST", path: "/echo", body: `{"x":[1,2]}`,
			header: map[string]string{"Content-Type": "application/json"}, status: 200,
			json: map[string]interface{}{"json": map[string]interface{}{"x": []int{1, 2}}, "contentType": "application/json"}},
		{name: "invalid json", method: "POST", path: "/echo", body: `{nope`,
			header: map[string]string{"Content-Type": "application/json"}, status: 200,
			json: map[string]interface{}{"json": nil, "text": "{nope"}},
		{name: "binary body", method: "POST", path: "/echo", body: "\x00\x01\xff", status: 200,
			json: map[string]interface{}{"text": "\x00\x01ÿ"}}, // latin-1 decoded by the handler
		{name: "path is decoded", path: "/ech%6F", status: 200, json: map[string]interface{}{"path": "/echo"}},
		{name: "duct headers", path: "/echo",
			header: map[string]string{"X-Duct-Invocation-Id": "inv-1", "X-Duct-Deadline-Ms": "1234"}, status: 200,
			json: map[string]interface{}{"invocation": "inv-1", "deadline": "1234", "hasHeader": true}},
		{name: "status and headers", path: "/status", status: 201,
			headers: map[string]string{"X-A": "1", "Content-Type": "text/plain; charset=utf-8", "Content-Length": "7"},
			text:    str("created")},
		{name: "body and status", path: "/tuple-two", status: 418, text: str("teapot")},
		{name: "body and headers", path: "/headers-only", status: 200,
			headers: map[string]string{"Content-Type": "text/html"}, text: str("hi")},
		{name: "bytes", path: "/bytes", status: 200,
			headers: map[string]string{"Content-Type": "application/octet-stream"}, text: str("\x00\x01\x02\xff")},
		{name: "list", path: "/list", status: 200, text: str(`[1,"two"]`)},
		{name: "None", path: "/none", status: 204, text: str("")},
		{name: "None with status", path: "/none-status", status: 202, text: str("")},
		{name: "raised", path: "/raise", status: 500,
			headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}, text: str("Internal Server Error")},
		{name: "unencodable result", path: "/bad-return", status: 500, text: str("Internal Server Error")},
		{name: "after errors", path: "/status", status: 201, text: str("created")},
		{name: "env and cwd", path: "/env", status: 200, json: map[string]interface{}{"greeting": "hi", "cwd": dir}},
		{name: "async handler", path: "/async", status: 200, json: map[string]interface{}{"async": true, "path": "/async"}},
		{name: "unicode", path: "/unicode", status: 200, text: str("héllo ✓")},
		{name: "HEAD", method: "HEAD", path: "/status", status: 201, headers: map[string]string{"Content-Length": "7"}, text: str("")},
		{name: "not found", path: "/nope", status: 404, text: str("not found")},
	})
	t.Run("chunked request", func(t *testing.T) {
		resp, body, err := in.doChunked("/echo", "chunked body")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"text":"chunked body"`) {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("keep-alive", func(t *testing.T) { checkKeepAlive(t, in, "/list", 20) })
	t.Run("concurrent", func(t *testing.T) { checkConcurrent(t, in, "/barrier?n=16", 16) })

	if ok, e := in.load(loadMsg(dir, "main.py", "http")); ok || !strings.Contains(e, "already loaded") {
		t.Errorf("second load = %v %q, want an already loaded error", ok, e)
	}
	in.check(t, request{path: "/list", status: 200, text: str(`[1,"two"]`)})

	logs := in.logs.String()
	for _, want := range []string{"Traceback", "ValueError: boom", "main.py", "TypeError"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	checkControlEOF(t, in)
}

const pythonEventHandler = `
def handler(event, context):
    if isinstance(event, dict) and event.get("fail"):
        raise RangeError("failed on purpose")
    if isinstance(event, dict) and event.get("nothing"):
        return None
    return {
        "event": event,
        "ctx": {
            "invocationId": context.invocation_id, "functionName": context.function_name,
            "functionVersion": context.function_version, "memoryLimitInMB": context.memory_limit_in_mb,
            "deadline": context.deadline, "remaining": context.get_remaining_time_in_millis() > 0,
        },
    }


class RangeError(Exception):
    pass
`

func TestPythonEvent(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"fn.py": pythonEventHandler})
	in := startPython(t)
	in.mustLoad(loadMsg(dir, "fn.py", "event"))
	runTable(t, in, eventTable())
	if logs := in.logs.String(); !strings.Contains(logs, "RangeError: failed on purpose") || !strings.Contains(logs, `fn.py", line 4`) {
		t.Errorf("log lacks the traceback:\n%s", logs)
	}
}

func TestPythonAsyncEvent(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"main.py": `
import asyncio

async def handler(event, context):
    await asyncio.sleep(0)
    return {"doubled": event["n"] * 2}
`})
	in := startPython(t)
	in.mustLoad(loadMsg(dir, "main.py", "event"))
	in.check(t, request{method: "POST", path: "/", body: `{"n":21}`, status: 200, text: str(`{"doubled":42}`)})
}

func TestPythonPackages(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"main.py":               "import helper\nimport vendored\n\ndef handler(request):\n    return helper.WORD + vendored.WORD\n",
		"helper.py":             "WORD = 'local+'\n",
		".packages/vendored.py": "WORD = 'vendored'\n",
	})
	in := startPython(t)
	in.mustLoad(loadMsg(dir, "main.py", "http"))
	in.check(t, request{path: "/", status: 200, text: str("local+vendored")})
}

func TestPythonLoadErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string
		entry string
		want  []string
	}{
		{"syntax error", map[string]string{"main.py": "def handler(request):\n    return (1\n\nx = [\n"}, "main.py",
			[]string{`main.py", line`, "SyntaxError"}},
		{"syntax error in an import", map[string]string{"main.py": "import util\n", "util.py": "def f(:\n    pass\n"}, "main.py",
			[]string{`util.py", line 1`, "SyntaxError"}},
		{"missing handler", map[string]string{"main.py": "import json\n\ndef foo(): pass\n\ndef bar(): pass\n"}, "main.py",
			[]string{"module main.py does not define a function named handler (defines: bar, foo)"}},
		{"not callable", map[string]string{"main.py": "handler = 'nope'\n"}, "main.py",
			[]string{"handler in main.py is a str, not a function"}},
		{"missing entry", map[string]string{"other.py": ""}, "main.py", []string{"entry file main.py not found in"}},
		{"missing module", map[string]string{"main.py": "import duct_no_such_module\n"}, "main.py",
			[]string{"No module named 'duct_no_such_module'", "requirements.txt", `main.py", line 1`}},
		{"raises on import", map[string]string{"main.py": "\n\nraise ValueError('boom at init')\n"}, "main.py",
			[]string{"loading main.py failed", `main.py", line 3`, "ValueError: boom at init"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeTree(t, tc.files)
			in := startPython(t)
			ok, msg := in.load(loadMsg(dir, tc.entry, "http"))
			if ok {
				t.Fatal("load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "shim.py") || (strings.Contains(msg, dir) && tc.name != "missing entry") {
				t.Errorf("error %q names the shim or the absolute directory", msg)
			}
			if code := in.waitExit(3 * time.Second); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
		})
	}
}

func TestPythonColdStart(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"main.py": "def handler(request):\n    return 'ok'\n"})
	t0 := time.Now()
	in := startPython(t)
	ready := time.Since(t0)
	t1 := time.Now()
	in.mustLoad(loadMsg(dir, "main.py", "http"))
	loaded := time.Since(t1)
	resp, _, err := in.do("GET", "/", nil, "")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	t.Logf("python: spawn→ready %v, load→ok %v, load→first response %v", ready, loaded, time.Since(t1))
}
