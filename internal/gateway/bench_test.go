package gateway_test

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/duct-dev/duct/internal/ducttest"
)

var noopGo = ducttest.Files{"fn.go": "package function\nimport \"net/http\"\nfunc Handle(w http.ResponseWriter, r *http.Request) { w.Write([]byte(\"hello\")) }\n"}

// get issues b.N keep-alive GETs from parallel clients and fails on any
// non-200.
func get(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.SetParallelism(25)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkBareServer is the baseline: a Go net/http hello server on
// loopback, measured with the same client as the gateway benchmarks.
func BenchmarkBareServer(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })}
	go srv.Serve(ln)
	defer srv.Close()
	get(b, "http://"+ln.Addr().String()+"/")
}

// BenchmarkGatewayGo measures a warm Go no-op function through the gateway.
func BenchmarkGatewayGo(b *testing.B) {
	s := ducttest.Start(b)
	s.Deploy("noop", noopGo, `{"concurrency": 100}`)
	get(b, s.URL+"/fn/noop")
}
