package deploy_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/ducttest"
)

// entry is one member of an archive built by hand, for archives that
// ducttest.Archive (which packs a real directory) cannot make.
type entry struct {
	name     string
	typ      byte // tar.TypeReg when zero
	body     string
	link     string
	mode     int64
	devMajor int64
}

// tarGz packs entries in order as a tar.gz, trusting them as given.
func tarGz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Devmajor: e.devMajor, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fnState is what GET /api/v1/functions/NAME says: the status, and
// the active and latest version numbers.
type fnState struct {
	status         int
	active, latest int
}

func stateOf(t testing.TB, s *ducttest.Server, name string) fnState {
	t.Helper()
	r := s.Get("/api/v1/functions/" + url.PathEscape(name))
	st := fnState{status: r.Status}
	if r.Status != http.StatusOK {
		return st
	}
	var fi duct.FunctionInfo
	if err := json.Unmarshal([]byte(r.Body), &fi); err != nil {
		t.Fatalf("GET function %s: %v: %s", name, err, r.Body)
	}
	st.latest = fi.Latest
	if fi.Active != nil {
		st.active = fi.Active.Number
	}
	return st
}

// versions lists the recorded versions of a function.
func versions(t testing.TB, s *ducttest.Server, name string) []duct.Version {
	t.Helper()
	r := s.Get("/api/v1/functions/" + name + "/versions")
	if r.Status != http.StatusOK {
		t.Fatalf("GET versions of %s: %d %s", name, r.Status, r.Body)
	}
	var vs []duct.Version
	if err := json.Unmarshal([]byte(r.Body), &vs); err != nil {
		t.Fatalf("GET versions of %s: %v: %s", name, err, r.Body)
	}
	return vs
}

// serving checks that fn still answers want and that its recorded state
// is still st: a refused deploy changed nothing.
func serving(t testing.TB, s *ducttest.Server, fn, want string, st fnState) {
	t.Helper()
	if r := s.Invoke(fn, "GET", "/", ""); r.Status != http.StatusOK || r.Body != want {
		t.Errorf("%s answers %d %q, want 200 %q", fn, r.Status, r.Body, want)
	}
	if got := stateOf(t, s, fn); got != st {
		t.Errorf("%s state is %+v, want %+v", fn, got, st)
	}
	if n := len(versions(t, s, fn)); n != st.latest {
		t.Errorf("%s has %d versions recorded, want %d", fn, n, st.latest)
	}
}

// streamed is the outcome of a deploy streamed as NDJSON.
type streamed struct {
	status int
	events []map[string]any
	result map[string]any
	err    map[string]any // the final line's error: a problem document
}

func (s streamed) logLines() []string {
	var out []string
	for _, e := range s.events {
		if e["phase"] == "log" {
			m, _ := e["message"].(string)
			out = append(out, m)
		}
	}
	return out
}

// deployStream deploys with Accept: application/x-ndjson and reads every
// line.
func deployStream(t testing.TB, s *ducttest.Server, name string, archive []byte, spec string) streamed {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if spec != "" {
		w, _ := mw.CreateFormField("spec")
		io.WriteString(w, spec)
	}
	w, _ := mw.CreateFormFile("source", "source.tar.gz")
	w.Write(archive)
	mw.Close()
	req, err := http.NewRequest("POST", s.URL+"/api/v1/functions/"+url.PathEscape(name)+"/versions", &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatalf("deploy %s: %v", name, err)
	}
	defer resp.Body.Close()
	out := streamed{status: resp.StatusCode}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode == http.StatusOK && ct != "application/x-ndjson" {
		t.Errorf("streamed deploy answered Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("streamed deploy: line %q: %v", sc.Text(), err)
		}
		out.events = append(out.events, ev)
		if r, ok := ev["result"].(map[string]any); ok {
			out.result = r
		}
		if e, ok := ev["error"].(map[string]any); ok {
			out.err = e
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("streamed deploy: %v", err)
	}
	return out
}

// wantPhrases checks that text holds every phrase, case-insensitively.
func wantPhrases(t testing.TB, what, text string, phrases ...string) {
	t.Helper()
	low := strings.ToLower(text)
	for _, p := range phrases {
		if !strings.Contains(low, strings.ToLower(p)) {
			t.Errorf("%s %q does not mention %q", what, text, p)
		}
	}
}

// noLeaks checks that a message shown to the user holds no server paths.
func noLeaks(t testing.TB, what, text string, dataDir string) {
	t.Helper()
	for _, bad := range []string{dataDir, "/tmp/", "deploy-", "/src/"} {
		if strings.Contains(text, bad) {
			t.Errorf("%s leaks a server path (%q): %q", what, bad, text)
		}
	}
}
