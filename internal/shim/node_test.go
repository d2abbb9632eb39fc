package shim

import (
	"strings"
	"testing"
	"time"
)

const nodeHTTPHandler = `
let waiting = 0, release;
let barrier = new Promise(r => { release = r; });

exports.handler = async (req, res) => {
  switch (req.path) {
  case '/echo':
    return res.json({
      method: req.method, path: req.path, url: req.url, query: req.query,
      body: req.body === undefined ? null : req.body, raw: req.rawBody.toString('base64'),
      contentType: req.get('Content-Type') ?? null, invocation: req.invocationId ?? null,
      deadline: req.get('x-duct-deadline-ms') ?? null,
    });
  case '/text': return res.status(201).set('X-A', '1').send('hello');
  case '/set-object': return res.set({ 'X-B': '2', 'X-C': '3' }).send(res.get('x-b'));
  case '/buffer': return res.send(Buffer.from([0, 1, 2, 255]));
  case '/return-object': return { returned: true };
  case '/return-text': return 'plain';
  case '/type': return res.type('html').send('<b>x</b>');
  case '/send-status': return res.sendStatus(418);
  case '/no-content': return res.status(204).send('dropped');
  case '/late': setTimeout(() => res.end('late'), 5); return;
  case '/raw': res.writeHead(202, { 'X-Raw': 'yes' }); res.write('a'); res.end('b'); return;
  case '/redirect': return res.redirect('/there');
  case '/sync': res.statusCode = 200; res.end('sync'); return;
  case '/throw': res.set('X-Lost', '1'); throw new Error('boom');
  case '/reject': await Promise.reject(new TypeError('bad'));
  case '/floating': Promise.reject(new Error('floating')); return 'still here';
  case '/env': return { greeting: process.env.GREETING, cwd: process.cwd() };
  case '/noop': return res.end();
  case '/slow': await new Promise(r => setTimeout(r, 300)); return 'slept';
  case '/barrier':
    if (++waiting === Number(req.query.n)) release();
    await Promise.race([barrier, new Promise(r => setTimeout(r, 5000))]);
    return { together: waiting >= Number(req.query.n) };
  }
  res.status(404).send('not found');
};
`

func TestNodeHTTP(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"index.js": nodeHTTPHandler})
	in := startNode(t)
	in.mustLoad(loadMsg(dir, "index.js", "http"))

	runTable(t, in, []request{
		{name: "query and no body", path: "/echo?a=1&b=x%20y&a=2", status: 200,
			headers: map[string]string{"Content-Type": "application/json; charset=utf-8"},
			json: map[string]interface{}{"method": "GET", "path": "/echo", "url": "/echo?a=1&b=x%20y&a=2",
				"query": map[string]interface{}{"a": []string{"1", "2"}, "b": "x y"}, "body": nil, "raw": ""}},
		{name: "json body", method: "POST", path: "/echo", body: `{"x":[1,2]}`,
			header: map[string]string{"Content-Type": "application/json"}, status: 200,
			json: map[string]interface{}{"body": map[string]interface{}{"x": []int{1, 2}}, "contentType": "application/json"}},
		{name: "invalid json body stays text", method: "POST", path: "/echo", body: `{nope`,
			header: map[string]string{"Content-Type": "application/json"}, status: 200,
			json: map[string]interface{}{"body": "{nope"}},
		{name: "form body", method: "POST", path: "/echo", body: "a=1&b=two",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 200,
			json: map[string]interface{}{"body": map[string]string{"a": "1", "b": "two"}}},
		{name: "text body", method: "PUT", path: "/echo", body: "hello there",
			header: map[string]string{"Content-Type": "text/plain"}, status: 200,
			json: map[string]interface{}{"method": "PUT", "body": "hello there", "raw": "aGVsbG8gdGhlcmU="}},
		{name: "binary body", method: "POST", path: "/echo", body: "\x00\x01\xff",
			header: map[string]string{"Content-Type": "application/octet-stream"}, status: 200,
			json: map[string]interface{}{"raw": "AAH/"}},
		{name: "duct headers", path: "/echo",
			header: map[string]string{"X-Duct-Invocation-Id": "inv-1", "X-Duct-Deadline-Ms": "1234"}, status: 200,
			json: map[string]interface{}{"invocation": "inv-1", "deadline": "1234"}},
		{name: "status and header", path: "/text", status: 201,
			headers: map[string]string{"X-A": "1", "Content-Type": "text/plain; charset=utf-8", "Content-Length": "5"},
			text:    str("hello")},
		{name: "set object and get", path: "/set-object", status: 200,
			headers: map[string]string{"X-B": "2", "X-C": "3"}, text: str("2")},
		{name: "buffer", path: "/buffer", status: 200,
			headers: map[string]string{"Content-Type": "application/octet-stream"}, text: str("\x00\x01\x02\xff")},
		{name: "returned object", path: "/return-object", status: 200,
			headers: map[string]string{"Content-Type": "application/json; charset=utf-8"}, text: str(`{"returned":true}`)},
		{name: "returned text", path: "/return-text", status: 200, text: str("plain")},
		{name: "type", path: "/type", status: 200,
			headers: map[string]string{"Content-Type": "text/html; charset=utf-8"}, text: str("<b>x</b>")},
		{name: "sendStatus", path: "/send-status", status: 418, text: str("I'm a Teapot")},
		{name: "204 drops the body", path: "/no-content", status: 204, text: str("")},
		{name: "finished after resolving", path: "/late", status: 200, text: str("late")},
		{name: "plain ServerResponse", path: "/raw", status: 202, headers: map[string]string{"X-Raw": "yes"}, text: str("ab")},
		{name: "sync handler", path: "/sync", status: 200, text: str("sync")},
		{name: "thrown error", path: "/throw", status: 500,
			headers: map[string]string{"Content-Type": "text/plain; charset=utf-8", "X-Lost": ""},
			text:    str("Internal Server Error")},
		{name: "rejected promise", path: "/reject", status: 500, text: str("Internal Server Error")},
		{name: "floating rejection", path: "/floating", status: 200, text: str("still here")},
		{name: "after errors", path: "/text", status: 201, text: str("hello")},
		{name: "env and cwd", path: "/env", status: 200, json: map[string]interface{}{"greeting": "hi", "cwd": dir}},
		{name: "HEAD", method: "HEAD", path: "/text", status: 201, text: str("")},
		{name: "not found", path: "/nope", status: 404, text: str("not found")},
	})
	t.Run("redirect", func(t *testing.T) {
		in.client.CheckRedirect = nil
		resp, _, err := in.do("GET", "/redirect", map[string]string{}, "")
		if err != nil {
			t.Fatal(err)
		}
		if resp.Request.URL.Path != "/there" {
			t.Errorf("redirected to %s", resp.Request.URL.Path)
		}
	})
	t.Run("keep-alive", func(t *testing.T) { checkKeepAlive(t, in, "/return-text", 20) })
	t.Run("concurrent", func(t *testing.T) { checkConcurrent(t, in, "/barrier?n=16", 16) })

	if ok, e := in.load(loadMsg(dir, "index.js", "http")); ok || !strings.Contains(e, "already loaded") {
		t.Errorf("second load = %v %q, want an already loaded error", ok, e)
	}
	in.check(t, request{path: "/return-text", status: 200, text: str("plain")})

	logs := in.logs.String()
	for _, want := range []string{"Error: boom", "TypeError: bad", "Unhandled promise rejection", "floating", "index.js:"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	checkControlEOF(t, in)
}

const nodeEventHandler = `
class ValidationError extends Error {}

module.exports.handler = async (event, ctx) => {
  if (event && event.fail) throw new RangeError('failed on purpose');
  if (event && event.invalid) throw new ValidationError('invalid on purpose');
  if (event && event.nothing) return undefined;
  return {
    event,
    ctx: {
      invocationId: ctx.invocationId, functionName: ctx.functionName, functionVersion: ctx.functionVersion,
      memoryLimitInMB: ctx.memoryLimitInMB, deadline: ctx.deadline, remaining: ctx.getRemainingTimeInMillis() > 0,
    },
  };
};
`

// eventTable is the event-signature table shared by Node.js and Python.
func eventTable() []request {
	future := time.Now().Add(time.Hour).UnixMilli()
	deadline := map[string]string{"X-Duct-Invocation-Id": "inv-9", "X-Duct-Deadline-Ms": itoa(future)}
	return []request{
		{name: "plain json", method: "POST", path: "/", body: `{"a":1}`, header: deadline, status: 200,
			headers: map[string]string{"Content-Type": "application/json"},
			json: map[string]interface{}{"event": map[string]int{"a": 1},
				"ctx": map[string]interface{}{"invocationId": "inv-9", "functionName": "hello", "functionVersion": 3,
					"memoryLimitInMB": 256, "deadline": future, "remaining": true}}},
		{name: "json under a form content type", method: "POST", path: "/", body: `{"a":2}`,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 200,
			json: map[string]interface{}{"event": map[string]int{"a": 2}}},
		{name: "plain text", method: "POST", path: "/", body: "just text",
			header: map[string]string{"Content-Type": "text/plain"}, status: 200,
			json: map[string]interface{}{"event": "just text"}},
		{name: "empty body", method: "POST", path: "/", status: 200, json: map[string]interface{}{"event": nil}},
		{name: "binary CloudEvent", method: "POST", path: "/", body: `{"temp":21.5}`,
			header: map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "e1", "Ce-Source": "/sensors/1",
				"Ce-Type": "com.example.reading", "Ce-Subject": "room%201", "Ce-Time": "2024-01-02T03:04:05Z",
				"Ce-Traceparent": "00-abc", "Content-Type": "application/json"}, status: 200,
			json: map[string]interface{}{"event": map[string]interface{}{"specversion": "1.0", "id": "e1",
				"source": "/sensors/1", "type": "com.example.reading", "subject": "room 1", "time": "2024-01-02T03:04:05Z",
				"traceparent": "00-abc", "datacontenttype": "application/json", "data": map[string]float64{"temp": 21.5}}}},
		{name: "binary CloudEvent with text data", method: "POST", path: "/", body: `hello`,
			header: map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "e2", "Ce-Source": "s", "Ce-Type": "t",
				"Content-Type": "text/plain"}, status: 200,
			json: map[string]interface{}{"event": map[string]interface{}{"specversion": "1.0", "id": "e2",
				"source": "s", "type": "t", "datacontenttype": "text/plain", "data": "hello"}}},
		{name: "structured CloudEvent", method: "POST", path: "/",
			body:   `{"specversion":"1.0","id":"e3","source":"s","type":"t","datacontenttype":"application/json","data":{"k":"v"},"ext1":"x"}`,
			header: map[string]string{"Content-Type": "application/cloudevents+json; charset=utf-8"}, status: 200,
			json: map[string]interface{}{"event": map[string]interface{}{"specversion": "1.0", "id": "e3",
				"source": "s", "type": "t", "datacontenttype": "application/json", "data": map[string]string{"k": "v"}, "ext1": "x"}}},
		{name: "invalid structured CloudEvent", method: "POST", path: "/", body: `{oops`,
			header: map[string]string{"Content-Type": "application/cloudevents+json"}, status: 400,
			json: map[string]interface{}{"errorType": "InvalidEvent"}},
		{name: "handler error", method: "POST", path: "/", body: `{"fail":true}`, status: 500,
			headers: map[string]string{"Content-Type": "application/json"},
			json:    map[string]interface{}{"errorType": "RangeError", "errorMessage": "failed on purpose"}},
		{name: "after the error", method: "POST", path: "/", body: `7`, status: 200, json: map[string]interface{}{"event": 7}},
		{name: "nothing returned", method: "POST", path: "/", body: `{"nothing":true}`, status: 204, text: str("")},
	}
}

func TestNodeEvent(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"handler.cjs": nodeEventHandler})
	in := startNode(t)
	in.mustLoad(loadMsg(dir, "handler.cjs", "event"))
	runTable(t, in, eventTable())
	in.check(t, request{method: "POST", path: "/", body: `{"invalid":true}`, status: 500,
		json: map[string]interface{}{"errorType": "ValidationError", "errorMessage": "invalid on purpose"}})
	if logs := in.logs.String(); !strings.Contains(logs, "RangeError: failed on purpose") || !strings.Contains(logs, "handler.cjs:5") {
		t.Errorf("log lacks the error's stack:\n%s", logs)
	}
}

// TestNodeModules loads the handler from every module format Node.js has.
func TestNodeModules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string
		entry string
	}{
		{"commonjs exports", map[string]string{"index.js": `exports.handler = async () => 'cjs';`}, "index.js"},
		{"commonjs module.exports object", map[string]string{"index.js": `
function handler(req, res) { res.send('object'); }
module.exports = { handler };`}, "index.js"},
		{"commonjs computed export", map[string]string{"index.js": `
const name = 'hand' + 'ler';
module.exports[name] = () => 'computed';`}, "index.js"},
		{"cjs extension", map[string]string{"fn.cjs": `module.exports.handler = async () => 'cjs-ext';`}, "fn.cjs"},
		{"mjs", map[string]string{"fn.mjs": `export async function handler() { return 'mjs'; }`}, "fn.mjs"},
		{"type module", map[string]string{
			"package.json": `{"type":"module"}`,
			"src/index.js": `import { word } from './word.js'; export const handler = async () => word;`,
			"src/word.js":  `export const word = 'type-module';`,
		}, "src/index.js"},
		{"esm default object", map[string]string{"fn.mjs": `export default { handler: () => 'default-object' };`}, "fn.mjs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeTree(t, tc.files)
			in := startNode(t)
			in.mustLoad(loadMsg(dir, tc.entry, "http"))
			resp, body, err := in.do("GET", "/", nil, "")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || len(body) == 0 {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}
		})
	}
}

func TestNodeLoadErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string
		entry string
		want  []string
	}{
		{"commonjs syntax error", map[string]string{"index.js": "exports.handler = 1;\nfunction x( {\n"}, "index.js",
			[]string{"index.js:3", "SyntaxError: Unexpected end of input"}},
		{"esm syntax error", map[string]string{"index.mjs": "export const handler = 1;\nconst x = ;\n"}, "index.mjs",
			[]string{"index.mjs:2", "const x = ;", "^", "SyntaxError: Unexpected token ';'"}},
		{"syntax error in an imported module", map[string]string{
			"index.mjs": "import './lib/b.mjs';\nexport const handler = 1;\n",
			"lib/b.mjs": "\n\nconst x = ;\n",
		}, "index.mjs", []string{"lib/b.mjs:3", "const x = ;", "SyntaxError: Unexpected token ';'"}},
		{"missing handler", map[string]string{"index.js": "module.exports = { foo() {}, bar: 1 };"}, "index.js",
			[]string{"module index.js does not export a function named handler (exports: foo, bar)"}},
		{"default function", map[string]string{"index.js": "module.exports = async () => 1;"}, "index.js",
			[]string{"does not export a function named handler", "default export is a function"}},
		{"not a function", map[string]string{"index.mjs": "export const handler = 42;"}, "index.mjs",
			[]string{"exports handler, but it is a number, not a function"}},
		{"missing entry", map[string]string{"other.js": ""}, "index.js",
			[]string{"entry file index.js not found in"}},
		{"throws on load", map[string]string{"index.js": "\nthrow new Error('boom at init');\n"}, "index.js",
			[]string{"loading index.js failed", "Error: boom at init", "index.js:2"}},
		{"missing package", map[string]string{"index.mjs": "import pad from 'left-pad';\nexport const handler = pad;\n"}, "index.mjs",
			[]string{"Cannot find package 'left-pad'", "package.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeTree(t, tc.files)
			in := startNode(t)
			ok, msg := in.load(loadMsg(dir, tc.entry, "http"))
			if ok {
				t.Fatal("load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, dir) && tc.name != "missing entry" {
				t.Errorf("error %q names the absolute directory", msg)
			}
			if code := in.waitExit(3 * time.Second); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
		})
	}
}

// TestNodeColdStart logs how long a started shim takes from load to its
// first response.
func TestNodeColdStart(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"index.js": `exports.handler = async (req, res) => res.send('ok');`})
	t0 := time.Now()
	in := startNode(t)
	ready := time.Since(t0)
	t1 := time.Now()
	in.mustLoad(loadMsg(dir, "index.js", "http"))
	loaded := time.Since(t1)
	resp, _, err := in.do("GET", "/", nil, "")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	total := time.Since(t1)
	t.Logf("node: spawn→ready %v, load→ok %v, load→first response %v", ready, loaded, total)
}
