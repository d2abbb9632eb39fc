package api_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/ducttest"
)

const maxUpload = 256 << 10

var hello = ducttest.Files{"index.js": `exports.handler = async (req, res) => res.send("hello v1");`}

// upload is one deploy request, built by hand to reach the corners of
// the endpoint.
type upload struct {
	path        string // below /api/v1/functions/; "hello/versions" when empty
	contentType string
	body        func() io.Reader
	chunked     bool // hide the length, so the limit is met while reading
	stream      bool // Accept: application/x-ndjson
}

// post sends u and returns the status and the body's problem document:
// the whole body, or for a streamed deploy its final error line.
func post(t *testing.T, s *ducttest.Server, u upload) (int, map[string]any) {
	t.Helper()
	path := u.path
	if path == "" {
		path = "hello/versions"
	}
	body := u.body()
	if u.chunked {
		body = io.MultiReader(body) // not a type whose length net/http knows
	}
	req, err := http.NewRequest("POST", s.URL+"/api/v1/functions/"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", u.contentType)
	if u.stream {
		req.Header.Set("Accept", "application/x-ndjson")
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if !u.stream || resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		json.Unmarshal(raw, &doc)
		return resp.StatusCode, doc
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev struct {
			Phase  string         `json:"phase"`
			Error  map[string]any `json:"error"`
			Result map[string]any `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("streamed line %q: %v", sc.Text(), err)
		}
		if ev.Error != nil {
			doc = ev.Error
		}
		if ev.Result != nil {
			doc = ev.Result
		}
	}
	return resp.StatusCode, doc
}

// multipartBody makes a deploy form: spec (when not empty), then source.
func multipartBody(spec string, source []byte, extra ...string) (string, func() io.Reader) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(extra); i += 2 {
		w, _ := mw.CreateFormField(extra[i])
		io.WriteString(w, extra[i+1])
	}
	if spec != "" {
		w, _ := mw.CreateFormField("spec")
		io.WriteString(w, spec)
	}
	if source != nil {
		w, _ := mw.CreateFormFile("source", "source.tar.gz")
		w.Write(source)
	}
	mw.Close()
	raw := buf.Bytes()
	return mw.FormDataContentType(), func() io.Reader { return bytes.NewReader(raw) }
}

// TestDeployUploadRefused sends uploads the endpoint must refuse before
// any build: too large, malformed forms, names it cannot route. Each is
// answered with a problem document, and the serving function stays as it
// was.
func TestDeployUploadRefused(t *testing.T) {
	s := ducttest.Start(t, func(c *daemon.Config) { c.MaxUpload = maxUpload })
	s.Deploy("hello", hello, "")

	noise := make([]byte, 2*maxUpload)
	rand.Read(noise)
	big := ducttest.Archive(t, ducttest.Files{"index.js": hello["index.js"], "noise.txt": string(noise)})
	bigType, bigBody := multipartBody("", big)
	okType, okBody := multipartBody("", ducttest.Archive(t, hello))
	noSourceType, noSourceBody := multipartBody("runtime: node\n", nil)
	extraType, extraBody := multipartBody("", ducttest.Archive(t, hello), "readme", "hi")
	bigSpecType, bigSpecBody := multipartBody("env: {A: \""+strings.Repeat("a", 70<<10)+"\"}\n", ducttest.Archive(t, hello))

	cases := []struct {
		name    string
		u       upload
		status  int
		phrases []string
	}{
		{"too-large", upload{contentType: bigType, body: bigBody}, http.StatusRequestEntityTooLarge, []string{"exceeds", "262144"}},
		{"too-large-chunked", upload{contentType: bigType, body: bigBody, chunked: true}, http.StatusRequestEntityTooLarge, []string{"exceeds", "262144"}},
		{"too-large-bare", upload{contentType: "application/gzip", body: func() io.Reader { return bytes.NewReader(big) }, chunked: true},
			http.StatusRequestEntityTooLarge, []string{"exceeds", "262144"}},
		{"too-large-streamed", upload{contentType: bigType, body: bigBody, chunked: true, stream: true},
			http.StatusRequestEntityTooLarge, []string{"exceeds", "262144"}},
		{"no-source-part", upload{contentType: noSourceType, body: noSourceBody}, http.StatusBadRequest, []string{"no source part"}},
		{"unexpected-part", upload{contentType: extraType, body: extraBody}, http.StatusBadRequest, []string{"readme", "spec and source"}},
		{"spec-too-large", upload{contentType: bigSpecType, body: bigSpecBody}, http.StatusBadRequest, []string{"spec", "larger than"}},
		{"bad-name", upload{path: "Hello/versions", contentType: okType, body: okBody}, http.StatusBadRequest, []string{"name", "lowercase"}},
		{"reserved-name", upload{path: "api/versions", contentType: okType, body: okBody}, http.StatusBadRequest, []string{"reserved"}},
		{"escaped-slash", upload{path: "a%2Fb/versions", contentType: okType, body: okBody}, http.StatusBadRequest, []string{"name"}},
		// A plain ".." never reaches the deploy: the path is cleaned into
		// another that names no endpoint. Escaped, it is refused as a name.
		{"dotdot", upload{path: "../versions", contentType: okType, body: okBody}, http.StatusNotFound, []string{"no API endpoint"}},
		{"dotdot-escaped", upload{path: "%2E%2E/versions", contentType: okType, body: okBody}, http.StatusBadRequest, []string{"invalid name", `".."`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, doc := post(t, s, c.u)
			if c.u.stream && status == http.StatusOK {
				status = int(doc["status"].(float64))
			}
			if status != c.status {
				t.Fatalf("status %d, want %d: %v", status, c.status, doc)
			}
			detail, _ := doc["detail"].(string)
			for _, p := range c.phrases {
				if !strings.Contains(detail, p) {
					t.Errorf("detail %q does not mention %q", detail, p)
				}
			}
			unchanged(t, s)
		})
	}

	t.Run("bare-archive", func(t *testing.T) {
		// A body that is the archive itself deploys as well as a form.
		v2 := ducttest.Files{"index.js": `exports.handler = async (req, res) => res.send("hello v2");`}
		archive := ducttest.Archive(t, v2)
		status, doc := post(t, s, upload{path: "bare/versions", contentType: "application/gzip", body: func() io.Reader { return bytes.NewReader(archive) }})
		if status != http.StatusCreated {
			t.Fatalf("bare archive: %d %v", status, doc)
		}
		if r := s.Invoke("bare", "GET", "/", ""); r.Body != "hello v2" {
			t.Errorf("bare answers %q", r.Body)
		}
	})
}

// unchanged checks that hello still serves version 1 and has no other.
func unchanged(t *testing.T, s *ducttest.Server) {
	t.Helper()
	if r := s.Invoke("hello", "GET", "/", ""); r.Body != "hello v1" {
		t.Errorf("hello answers %d %q", r.Status, r.Body)
	}
	var fi duct.FunctionInfo
	r := s.Get("/api/v1/functions/hello")
	if err := json.Unmarshal([]byte(r.Body), &fi); err != nil || fi.Active == nil || fi.Active.Number != 1 || fi.Latest != 1 {
		t.Errorf("hello after a refused deploy: %d %s", r.Status, r.Body)
	}
}

// TestDeployStreamed reads a streamed deploy: progress in order, then the
// result; the version's build log stays on the server.
func TestDeployStreamed(t *testing.T) {
	s := ducttest.Start(t)
	ct, body := multipartBody("", ducttest.Archive(t, hello))
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/functions/hello/versions", body())
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var phases []string
	var result map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		p, _ := ev["phase"].(string)
		if len(phases) == 0 || phases[len(phases)-1] != p {
			phases = append(phases, p)
		}
		if r, ok := ev["result"].(map[string]any); ok {
			result = r
		}
	}
	want := "extract build log check store done result"
	if got := strings.Join(phases, " "); got != want {
		t.Errorf("phases %q, want %q", got, want)
	}
	if result == nil {
		t.Fatal("no result line")
	}
	v, _ := result["version"].(map[string]any)
	if v["number"] != float64(1) || v["buildLog"] != nil || !strings.HasSuffix(result["url"].(string), "/fn/hello") {
		t.Errorf("result %v", result)
	}
}

// A spec part after the source part still applies.
func TestDeploySpecAfterSource(t *testing.T) {
	s := ducttest.Start(t)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("source", "source.tar.gz")
	w.Write(ducttest.Archive(t, ducttest.Files{"index.js": `exports.handler = async (req, res) => res.send(process.env.WHO);`}))
	f, _ := mw.CreateFormField("spec")
	io.WriteString(f, `{"env": {"WHO": "after"}}`)
	mw.Close()
	r := s.Do("POST", "/api/v1/functions/late/versions", &body, "Content-Type", mw.FormDataContentType())
	if r.Status != 201 {
		t.Fatalf("deploy: %d %s", r.Status, r.Body)
	}
	if got := s.Invoke("late", "GET", "/", "").Body; got != "after" {
		t.Fatalf("function saw WHO=%q: the spec part after the source was dropped", got)
	}
}
