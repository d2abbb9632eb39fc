package instance

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func parse(raw, method string) (*head, string, bool, error) {
	br := bufio.NewReaderSize(strings.NewReader(raw), 4096)
	var h head
	if err := readHead(br, &h); err != nil {
		return nil, "", false, err
	}
	r, reuse := bodyReader(br, &h, method)
	b, err := io.ReadAll(r)
	return &h, string(b), reuse, err
}

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name, raw, method string
		status            int
		body              string
		reuse             bool
		headers           int
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", "GET", 200, "hello", true, 2},
		{"chunked", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\n", "POST", 201, "abcde", true, 0},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nstream", "GET", 200, "stream", false, 0},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "GET", 200, "ok", false, 1},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET", 200, "ok", false, 1},
		{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", "GET", 200, "ok", true, 1},
		{"head has no body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD", 200, "", true, 1},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", "GET", 204, "", true, 0},
		{"interim skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", "POST", 200, "x", true, 1},
		{"hop-by-hop dropped", "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nUpgrade: h2\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n", "GET", 200, "", true, 2},
		{"lowercase keys canonical", "HTTP/1.1 200 OK\r\ncontent-type: a\r\nx-thing: b\r\ncontent-length: 0\r\n\r\n", "GET", 200, "", true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body, reuse, err := parse(tt.raw, tt.method)
			if err != nil {
				t.Fatal(err)
			}
			if h.status != tt.status || body != tt.body || reuse != tt.reuse || len(h.headers) != tt.headers {
				t.Fatalf("got status %d body %q reuse %v headers %v", h.status, body, reuse, h.headers)
			}
			for _, kv := range h.headers {
				if kv.k != strings.ToUpper(kv.k[:1])+kv.k[1:] || strings.Contains(kv.k, "-t") {
					t.Errorf("header key %q not canonical", kv.k)
				}
			}
		})
	}
}

func TestReadResponseRejects(t *testing.T) {
	long := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n"
	many := "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", 300) + "\r\n"
	tests := map[string]string{
		"empty":               "",
		"not http":            "SSH-2.0-OpenSSH\r\n\r\n",
		"bad status":          "HTTP/1.1 2x0 OK\r\n\r\n",
		"status 600":          "HTTP/1.1 600 Nope\r\n\r\n",
		"truncated head":      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
		"bad length":          "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"conflicting lengths": "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
		"bad encoding":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"header no colon":     "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n",
		"obs-fold":            "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n",
		"bad key":             "HTTP/1.1 200 OK\r\nX A: 1\r\n\r\n",
		"control in value":    "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\n\r\n",
		"line too long":       long,
		"too many headers":    many,
		"short body":          "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"bad chunk":           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"chunk without crlf":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy0\r\n\r\n",
		"endless interim":     strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 20),
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := parse(raw, "GET"); err == nil {
				t.Fatalf("accepted %q", raw[:min(len(raw), 80)])
			} else if errors.Is(err, io.EOF) {
				t.Fatalf("plain EOF would pass a truncated response for a whole one: %v", err)
			}
		})
	}
}

// FuzzReadResponse: no input may panic the parser or make it read a body
// past what the head declared.
func FuzzReadResponse(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	f.Add("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	f.Add("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No Content\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		h, body, _, err := parse(raw, "GET")
		if err != nil {
			return
		}
		if h.status < 100 || h.status > 599 {
			t.Fatalf("status %d accepted", h.status)
		}
		if h.contentLength >= 0 && !h.chunked && int64(len(body)) != h.contentLength && h.status >= 200 && h.status != 204 && h.status != 304 {
			t.Fatalf("body of %d bytes for Content-Length %d", len(body), h.contentLength)
		}
	})
}

// A run directory too deep for Unix socket paths gets a short private
// stand-in; sockets never become abstract (reachable from the host's
// network namespace).
func TestLongRunDir(t *testing.T) {
	deep := t.TempDir() + "/" + strings.Repeat("d", 90)
	l := New(Config{RunDir: deep})
	defer l.Close()
	addr, f, err := l.listener()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.Contains(addr, "@") || strings.HasPrefix(addr, "unix:"+deep) {
		t.Fatalf("listener at %s", addr)
	}
}
