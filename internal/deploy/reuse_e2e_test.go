package deploy_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/duct-dev/duct/internal/ducttest"
)

// greeter answers with $GREETING, which duct.yaml sets.
func greeter(greeting string) ducttest.Files {
	return ducttest.Files{
		"index.js":  `exports.handler = async (req, res) => res.send("hello " + process.env.GREETING);`,
		"duct.yaml": "env:\n  GREETING: " + greeting + "\n",
	}
}

// TestDeployReusesBuilds: identical input makes no new version; a change
// to duct.yaml alone makes one without a build; the same source under
// another name shares the artifact; the spec part wins over duct.yaml.
func TestDeployReusesBuilds(t *testing.T) {
	s := ducttest.Start(t)
	first := s.DeployRaw("greet", ducttest.Archive(t, greeter("one")), "")
	if first.Status != http.StatusCreated || first.Version.Number != 1 || first.Version.Cached || first.Unchanged {
		t.Fatalf("first deploy: %+v", first)
	}
	if first.Version.BuildKey == "" || first.Version.ArtifactDigest == "" || first.Version.SourceArchive == "" {
		t.Fatalf("first deploy records no build key, artifact or source: %+v", first.Version)
	}
	if r := s.Invoke("greet", "GET", "/", ""); r.Body != "hello one" {
		t.Fatalf("greet answers %d %q", r.Status, r.Body)
	}
	// The build log is kept with the version, though the deploy's answer
	// leaves it out.
	if r := s.Get("/api/v1/functions/greet/versions/1"); !strings.Contains(r.Body, "node: entry index.js") {
		t.Errorf("version 1 has no build log: %s", r.Body)
	}

	t.Run("identical", func(t *testing.T) {
		r := s.DeployRaw("greet", ducttest.Archive(t, greeter("one")), "")
		if r.Status != http.StatusOK || !r.Unchanged || r.Version.Number != 1 {
			t.Fatalf("identical redeploy: status %d, unchanged %v, version %d", r.Status, r.Unchanged, r.Version.Number)
		}
		if st := stateOf(t, s, "greet"); st.active != 1 || st.latest != 1 {
			t.Errorf("after an identical redeploy: %+v", st)
		}
	})

	t.Run("manifest-only", func(t *testing.T) {
		r := deployStream(t, s, "greet", ducttest.Archive(t, greeter("two")), "")
		if r.result == nil {
			t.Fatalf("deploy: %v", r.err)
		}
		v := r.result["version"].(map[string]any)
		if v["number"] != float64(2) || v["cached"] != true || v["buildDuration"] != float64(0) {
			t.Errorf("duct.yaml change: version %v, cached %v, build %v", v["number"], v["cached"], v["buildDuration"])
		}
		if v["artifactDigest"] != first.Version.ArtifactDigest || v["buildKey"] != first.Version.BuildKey {
			t.Errorf("duct.yaml change made a new artifact: %v", v)
		}
		if lines := r.logLines(); len(lines) != 0 {
			t.Errorf("no build should run, but it logged %q", lines)
		}
		if !hasEvent(r, "build", "identical build found") || !hasEvent(r, "check", "") {
			t.Errorf("events %v: want the reuse said, and a start check", r.events)
		}
		if got := s.Invoke("greet", "GET", "/", ""); got.Body != "hello two" {
			t.Errorf("greet answers %q after the duct.yaml change", got.Body)
		}
	})

	t.Run("another-name", func(t *testing.T) {
		r := s.DeployRaw("greet-copy", ducttest.Archive(t, greeter("copy")), "")
		if r.Status != http.StatusCreated || !r.Version.Cached || r.Version.Number != 1 {
			t.Fatalf("same source, another name: status %d, cached %v, version %d", r.Status, r.Version.Cached, r.Version.Number)
		}
		if r.Version.ArtifactDigest != first.Version.ArtifactDigest {
			t.Errorf("same source, another artifact")
		}
		if got := s.Invoke("greet-copy", "GET", "/", ""); got.Body != "hello copy" {
			t.Errorf("greet-copy answers %q", got.Body)
		}
	})

	t.Run("spec-overrides-manifest", func(t *testing.T) {
		r := s.DeployRaw("greet", ducttest.Archive(t, greeter("file")), `{"env": {"GREETING": "spec"}}`)
		if r.Status != http.StatusCreated || !r.Version.Cached || r.Version.Spec.Env["GREETING"] != "spec" {
			t.Fatalf("spec override: status %d, cached %v, env %v", r.Status, r.Version.Cached, r.Version.Spec.Env)
		}
		if got := s.Invoke("greet", "GET", "/", ""); got.Body != "hello spec" {
			t.Errorf("greet answers %q, want the spec's greeting", got.Body)
		}
	})

	t.Run("options-rebuild", func(t *testing.T) {
		// The handler's name is a build option: it makes another build.
		files := ducttest.Files{"index.js": greeter("x")["index.js"] + "\nexports.other = async (req, res) => res.send('other');"}
		a := s.DeployRaw("greet", ducttest.Archive(t, files), "")
		b := s.DeployRaw("greet", ducttest.Archive(t, files), "handler: other\n")
		if a.Status != http.StatusCreated || b.Status != http.StatusCreated || b.Version.Cached || a.Version.BuildKey == b.Version.BuildKey {
			t.Fatalf("handler change: %d %d, cached %v, keys equal %v", a.Status, b.Status, b.Version.Cached, a.Version.BuildKey == b.Version.BuildKey)
		}
		if got := s.Invoke("greet", "GET", "/", ""); got.Body != "other" {
			t.Errorf("greet answers %q, want the other handler's", got.Body)
		}
	})

	t.Run("reused-build-checked", func(t *testing.T) {
		// The artifact is sound, but not with this spec: a reused build
		// is checked with the new spec before it may serve.
		files := ducttest.Files{"index.js": `if (!process.env.KEY) throw new Error("KEY is not set");
exports.handler = async (req, res) => res.send("key " + process.env.KEY);`}
		if r := s.DeployRaw("needs-key", ducttest.Archive(t, files), `{"env": {"KEY": "k1"}}`); r.Status != http.StatusCreated {
			t.Fatalf("deploy with KEY: %d %v", r.Status, r.Problem)
		}
		r := s.DeployRaw("needs-key", ducttest.Archive(t, files), "")
		if r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("deploy without KEY: status %d, want 422", r.Status)
		}
		detail, _ := r.Problem["detail"].(string)
		wantPhrases(t, "detail", detail, "does not start", "KEY is not set")
		serving(t, s, "needs-key", "key k1", fnState{status: http.StatusOK, active: 1, latest: 1})
	})
}

func hasEvent(r streamed, phase, message string) bool {
	for _, e := range r.events {
		m, _ := e["message"].(string)
		if e["phase"] == phase && strings.Contains(m, message) {
			return true
		}
	}
	return false
}

// TestDeployBringYourOwnServer deploys programs that serve $PORT
// themselves: a Go main package, and a script run by runtime image.
func TestDeployBringYourOwnServer(t *testing.T) {
	s := ducttest.Start(t)
	goMain := ducttest.Files{"main.go": `package main

import (
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("own server at " + r.URL.Path)) })
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		panic(err)
	}
}
`}
	server := `import http.server, os

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("image at " + self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`
	script := tarGz(t,
		entry{name: "serve.sh", body: "#!/bin/sh\nexec python3 server.py\n", mode: 0o755},
		entry{name: "server.py", body: server})
	cases := []struct {
		name    string
		archive []byte
		spec    string
		want    string
	}{
		{"go-main", ducttest.Archive(t, goMain), "", "own server at /x"},
		{"image-script", script, "runtime: image\ncommand: [serve.sh]\n", "image at /x"},
		{"image-shell", script, "runtime: image\ncommand: [/bin/sh, serve.sh]\n", "image at /x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := s.DeployRaw(c.name, c.archive, c.spec)
			if r.Status != http.StatusCreated {
				t.Fatalf("deploy: %d %v", r.Status, r.Problem)
			}
			if got := s.Invoke(c.name, "GET", "/x", ""); got.Status != http.StatusOK || got.Body != c.want {
				t.Errorf("answers %d %q, want %q", got.Status, got.Body, c.want)
			}
		})
	}
}

// TestConcurrentDeploys deploys 16 different sources to one function at
// once: each gets its own version number, none is lost, one serves.
func TestConcurrentDeploys(t *testing.T) {
	s := ducttest.Start(t)
	const n = 16
	var wg sync.WaitGroup
	numbers := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := ducttest.Files{"index.js": fmt.Sprintf(`exports.handler = async (req, res) => res.send("source %d");`, i)}
			r := s.DeployRaw("busy", ducttest.Archive(t, src), "")
			if r.Status != http.StatusCreated {
				t.Errorf("deploy %d: %d %v", i, r.Status, r.Problem)
				return
			}
			numbers[i] = r.Version.Number
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	seen := map[int]int{} // version → source
	for i, v := range numbers {
		if j, dup := seen[v]; dup {
			t.Errorf("sources %d and %d both got version %d", j, i, v)
		}
		seen[v] = i
	}
	vs := versions(t, s, "busy")
	if len(vs) != n {
		t.Fatalf("%d versions recorded, want %d", len(vs), n)
	}
	for k, v := range vs {
		if v.Number != k+1 {
			t.Errorf("versions are %d at %d: want 1 to %d", v.Number, k, n)
		}
	}
	st := stateOf(t, s, "busy")
	if st.latest != n || st.active < 1 || st.active > n {
		t.Fatalf("state after concurrent deploys: %+v", st)
	}
	want := fmt.Sprintf("source %d", seen[st.active])
	if r := s.Invoke("busy", "GET", "/", ""); r.Body != want {
		t.Errorf("active version %d answers %q, want %q", st.active, r.Body, want)
	}
}

// TestConcurrentIdenticalDeploys deploys one source under four names at
// once: it is built once, and the others reuse that build.
func TestConcurrentIdenticalDeploys(t *testing.T) {
	s := ducttest.Start(t)
	archive := ducttest.Archive(t, ducttest.Files{"index.js": `exports.handler = async (req, res) => res.send("twin");`})
	const n = 4
	var wg sync.WaitGroup
	built := make([]bool, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.DeployRaw(fmt.Sprintf("twin-%d", i), archive, "")
			if r.Status != http.StatusCreated {
				t.Errorf("deploy %d: %d %v", i, r.Status, r.Problem)
			}
			built[i] = !r.Version.Cached
		}()
	}
	wg.Wait()
	builds := 0
	for _, b := range built {
		if b {
			builds++
		}
	}
	if builds != 1 {
		t.Errorf("%d builds of one source, want 1", builds)
	}
}

// A command names a program on the instance's PATH, and applies to
// runtime image only.
func TestDeployImageCommandOnPath(t *testing.T) {
	s := ducttest.Start(t)
	app := ducttest.Files{"app.py": "import http.server, os\n" +
		"class H(http.server.BaseHTTPRequestHandler):\n" +
		"    def do_GET(self):\n" +
		"        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'py')\n" +
		"http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"}
	s.Deploy("pyapp", app, "runtime: image\ncommand: [python3, app.py]\n")
	if r := s.Invoke("pyapp", "GET", "/", ""); r.Status != 200 || r.Body != "py" {
		t.Fatalf("invoke: %d %q", r.Status, r.Body)
	}
	r := s.DeployRaw("pycmd", ducttest.Archive(t, app), "runtime: python\ncommand: [python3, app.py]\n")
	if r.Status != 400 || !strings.Contains(fmt.Sprint(r.Problem["detail"]), "runtime image only") {
		t.Fatalf("command with runtime python: %d %v", r.Status, r.Problem)
	}
}
