package shim

import (
	"io"
	"net/http"
	"testing"
)

// The warm path: a kept-alive connection, a no-op handler, the response.

func BenchmarkNodeWarm(b *testing.B) {
	dir := writeTree(b, map[string]string{"index.js": `exports.handler = (req, res) => { res.end('ok'); };`})
	in := startNode(b)
	in.mustLoad(loadMsg(dir, "index.js", "http"))
	benchWarm(b, in, "/")
}

func BenchmarkNodeWarmEvent(b *testing.B) {
	dir := writeTree(b, map[string]string{"index.js": `exports.handler = async (event) => event;`})
	in := startNode(b)
	in.mustLoad(loadMsg(dir, "index.js", "event"))
	benchWarm(b, in, "/")
}

func BenchmarkPythonWarm(b *testing.B) {
	dir := writeTree(b, map[string]string{"main.py": "def handler(request):\n    return 'ok'\n"})
	in := startPython(b)
	in.mustLoad(loadMsg(dir, "main.py", "http"))
	benchWarm(b, in, "/")
}

func BenchmarkPythonWarmEvent(b *testing.B) {
	dir := writeTree(b, map[string]string{"main.py": "def handler(event, context):\n    return event\n"})
	in := startPython(b)
	in.mustLoad(loadMsg(dir, "main.py", "event"))
	benchWarm(b, in, "/")
}

func BenchmarkGoWarm(b *testing.B) {
	benchWarm(b, startGo(b, "Handle"), "/noop")
}

func BenchmarkGoWarmEvent(b *testing.B) {
	benchWarm(b, startGo(b, "Nothing"), "/")
}

func benchWarm(b *testing.B, in *instance, path string) {
	req, err := http.NewRequest("GET", in.base+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	get := func() {
		resp, err := in.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	for i := 0; i < 200; i++ {
		get()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		get()
	}
}
