package deploy_test

import (
	"archive/tar"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/duct-dev/duct/internal/ducttest"
)

// good is the function every refused deploy must leave serving.
var good = ducttest.Files{"index.js": `exports.handler = async (req, res) => res.send("good v1");`}

// badInput is a deploy that must be refused.
type badInput struct {
	name    string
	fn      string // the function deployed to; "good" when empty
	archive []byte
	files   ducttest.Files // packed when archive is nil
	spec    string
	status  int
	phrases []string // the problem's detail mentions each
	stream  bool     // also deploy it streamed, and check the error line
}

// TestDeployRefusesBadInput deploys bad input over a serving function:
// each is refused with the right status and a detail that says what is
// wrong, build failures carry their log, and nothing changes.
func TestDeployRefusesBadInput(t *testing.T) {
	s := ducttest.Start(t)
	s.Deploy("good", good, "")
	before := stateOf(t, s, "good")
	if before.active != 1 || before.latest != 1 {
		t.Fatalf("good after first deploy: %+v", before)
	}

	var cases []badInput
	cases = append(cases, nameCases()...)
	cases = append(cases, specCases()...)
	cases = append(cases, archiveCases(t)...)
	cases = append(cases, sourceCases()...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fn := c.fn
			if fn == "" {
				fn = "good"
			}
			archive := c.archive
			if archive == nil {
				archive = ducttest.Archive(t, c.files)
			}
			r := s.DeployRaw(url.PathEscape(fn), archive, c.spec)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %v", r.Status, c.status, r.Problem)
			}
			detail, _ := r.Problem["detail"].(string)
			t.Logf("detail: %s\nlog: %v", detail, r.Problem["buildLog"])
			wantPhrases(t, "detail", detail, c.phrases...)
			noLeaks(t, "detail", detail, s.Config.DataDir)
			if title, _ := r.Problem["title"].(string); r.Problem["status"] != float64(c.status) || title == "" {
				t.Errorf("problem document %v", r.Problem)
			}
			if c.status == http.StatusUnprocessableEntity {
				if log, _ := r.Problem["buildLog"].(string); log == "" {
					t.Errorf("build failure without its log: %v", r.Problem)
				} else {
					noLeaks(t, "build log", log, s.Config.DataDir)
				}
			}
			if c.stream {
				checkStreamedFailure(t, s, fn, archive, c)
			}
			if fn != "good" {
				if st := stateOf(t, s, fn); st.status != http.StatusNotFound && st.status != http.StatusBadRequest {
					t.Errorf("GET %q after a refused deploy: %+v", fn, st)
				}
			}
			serving(t, s, "good", "good v1", before)
		})
	}
}

// checkStreamedFailure deploys c streamed: progress lines, then an error
// line holding the same problem and the build log.
func checkStreamedFailure(t *testing.T, s *ducttest.Server, fn string, archive []byte, c badInput) {
	t.Helper()
	r := deployStream(t, s, fn, archive, c.spec)
	if r.status != http.StatusOK || r.err == nil || r.result != nil {
		t.Fatalf("streamed: status %d, error %v, result %v", r.status, r.err, r.result)
	}
	if last := r.events[len(r.events)-1]; last["phase"] != "error" {
		t.Errorf("streamed: last line %v, want the error", last)
	}
	if r.err["status"] != float64(c.status) {
		t.Errorf("streamed: error status %v, want %d", r.err["status"], c.status)
	}
	detail, _ := r.err["detail"].(string)
	wantPhrases(t, "streamed detail", detail, c.phrases...)
	if c.status == http.StatusUnprocessableEntity {
		log, _ := r.err["buildLog"].(string)
		if log == "" || len(r.logLines()) == 0 {
			t.Errorf("streamed build failure: log %q, %d log lines", log, len(r.logLines()))
		}
		noLeaks(t, "streamed build log", log, s.Config.DataDir)
	}
}

func nameCases() []badInput {
	long := strings.Repeat("a", 64)
	var out []badInput
	for _, c := range []struct{ name, fn string }{
		{"uppercase", "Hello"},
		{"slash", "a/b"},
		{"double-hyphen", "x--y"},
		{"trailing-hyphen", "x-"},
		{"leading-digit", "1x"},
		{"reserved-api", "api"},
		{"reserved-fn", "fn"},
		{"64-chars", long},
		{"control-char", "a\nb"},
		{"nul", "a\x00b"},
		{"cyrillic-a", "\u0430pi"},
		{"space", "a b"},
	} {
		out = append(out, badInput{
			name: "name/" + c.name, fn: c.fn, files: good, status: http.StatusBadRequest,
			phrases: []string{"name"},
		})
	}
	return out
}

func specCases() []badInput {
	bad := http.StatusBadRequest
	return []badInput{
		{name: "spec/unknown-runtime", files: good, spec: "runtime: rust\n", status: bad,
			phrases: []string{"runtime", "rust", "go, node, python"}},
		{name: "manifest/unknown-runtime", files: ducttest.Files{"index.js": good["index.js"], "duct.yaml": "runtime: cobol\n"},
			status: bad, phrases: []string{"duct.yaml", "runtime", "cobol"}},
		{name: "manifest/bad-yaml", files: ducttest.Files{"index.js": good["index.js"], "duct.yaml": "env: {A: 1\ntimeout: [\n"},
			status: bad, phrases: []string{"duct.yaml"}},
		{name: "manifest/unknown-field", files: ducttest.Files{"index.js": good["index.js"], "duct.yaml": "timout: 5s\n"},
			status: bad, phrases: []string{"duct.yaml", "timout", "timeout"}},
		{name: "manifest/wrong-type", files: ducttest.Files{"index.js": good["index.js"], "duct.yaml": "concurrency: lots\n"},
			status: bad, phrases: []string{"duct.yaml", "concurrency", "lots"}},
		{name: "manifest/reserved-env", files: ducttest.Files{"index.js": good["index.js"], "duct.yaml": "env: {PORT: \"1\"}\n"},
			status: bad, phrases: []string{"env", "PORT", "reserved"}},
		{name: "spec/bad-yaml", files: good, spec: "env: [\n", status: bad, phrases: []string{"spec"}},
		{name: "spec/unknown-field", files: good, spec: `{"runtmie": "node"}`, status: bad, phrases: []string{"spec", "runtmie"}, stream: true},
		{name: "spec/wrong-type", files: good, spec: "timeout: forever\n", status: bad, phrases: []string{"spec", "timeout", "forever"}},
		{name: "image-without-command", files: good, spec: "runtime: image\n", status: bad, phrases: []string{"command", "$PORT"}},
		{name: "mixed-runtimes", files: ducttest.Files{"index.js": good["index.js"], "main.py": "def handler(request):\n    return 'py'\n"},
			status: bad, phrases: []string{"mixes runtimes", "node", "python", "runtime"}},
		{name: "empty-archive", files: ducttest.Files{}, status: bad, phrases: []string{"no go, node.js or python source"}},
		{name: "empty-body", archive: []byte{}, status: bad, phrases: []string{"empty", "archive"}},
		{name: "not-an-archive", archive: []byte("exports.handler = 1"), status: bad, phrases: []string{"archive", "tar.gz, tar or zip"}},
		{name: "several-entries", files: ducttest.Files{"a.js": good["index.js"], "b.js": good["index.js"]},
			status: bad, phrases: []string{"a.js", "b.js", "entry"}},
		{name: "missing-entry", files: good, spec: "entry: nope.js\n", status: bad, phrases: []string{"entry", "nope.js"}},
	}
}

func archiveCases(t *testing.T) []badInput {
	bad := http.StatusBadRequest
	js := good["index.js"]
	return []badInput{
		{name: "archive/dotdot", archive: tarGz(t, entry{name: "index.js", body: js}, entry{name: "../evil.js", body: "x"}),
			status: bad, phrases: []string{"archive", "../evil.js", `".."`}},
		{name: "archive/nested-dotdot", archive: tarGz(t, entry{name: "index.js", body: js}, entry{name: "lib/../../evil.js", body: "x"}),
			status: bad, phrases: []string{"archive", `".."`}},
		{name: "archive/absolute", archive: tarGz(t, entry{name: "index.js", body: js}, entry{name: "/etc/cron.d/evil", body: "x"}),
			status: bad, phrases: []string{"archive", "absolute path"}},
		{name: "archive/symlink-out", archive: tarGz(t, entry{name: "index.js", body: js}, entry{name: "passwd", typ: tar.TypeSymlink, link: "../../../../etc/passwd"}),
			status: bad, phrases: []string{"archive", "passwd", "outside"}, stream: true},
		{name: "archive/symlink-absolute", archive: tarGz(t, entry{name: "index.js", body: js}, entry{name: "passwd", typ: tar.TypeSymlink, link: "/etc/passwd"}),
			status: bad, phrases: []string{"archive", "absolute symlink target"}},
		{name: "archive/write-through-symlink", archive: tarGz(t, entry{name: "index.js", body: js},
			entry{name: "d", typ: tar.TypeSymlink, link: "."}, entry{name: "d/x.js", body: "x"}),
			status: bad, phrases: []string{"archive", "symlink"}},
		{name: "archive/char-device", archive: tarGz(t, entry{name: "index.js", body: js}, entry{name: "null", typ: tar.TypeChar, devMajor: 1}),
			status: bad, phrases: []string{"archive", "device"}},
		{name: "archive/block-device", archive: tarGz(t, entry{name: "index.js", body: js}, entry{name: "sda", typ: tar.TypeBlock, devMajor: 8}),
			status: bad, phrases: []string{"archive", "device"}},
		{name: "archive/fifo", archive: tarGz(t, entry{name: "index.js", body: js}, entry{name: "pipe", typ: tar.TypeFifo}),
			status: bad, phrases: []string{"archive", "fifo"}},
		{name: "archive/setuid", archive: tarGz(t, entry{name: "index.js", body: js}, entry{name: "run.sh", body: "#!/bin/sh\n", mode: 0o4755}),
			status: bad, phrases: []string{"archive", "setuid"}},
		{name: "archive/truncated", archive: tarGz(t, entry{name: "index.js", body: js})[:20],
			status: bad, phrases: []string{"archive", "corrupt"}},
	}
}

func sourceCases() []badInput {
	failed := http.StatusUnprocessableEntity
	goHandle := "package function\n\nimport \"net/http\"\n\n"
	return []badInput{
		// Node.js
		{name: "node/syntax-error-cjs", files: ducttest.Files{"index.js": "exports.handler = async (req, res) => { res.send('x' ;\n};\n"},
			status: failed, phrases: []string{"does not start", "SyntaxError", "index.js"}},
		{name: "node/syntax-error-esm", files: ducttest.Files{"index.mjs": "export const handler = async (req, res) => {\n  res.send(;\n};\n"},
			status: failed, phrases: []string{"does not start", "SyntaxError", "index.mjs"}, stream: true},
		{name: "node/missing-handler-cjs", files: ducttest.Files{"index.js": "exports.other = async (req, res) => res.send('x');\n"},
			status: failed, phrases: []string{"does not start", "handler"}},
		{name: "node/missing-handler-esm", files: ducttest.Files{"index.mjs": "export const other = async (req, res) => res.send('x');\n"},
			status: failed, phrases: []string{"does not start", "handler"}},
		{name: "node/throws-at-load", files: ducttest.Files{"index.js": "throw new Error('boom at load');\n"},
			status: failed, phrases: []string{"does not start", "boom at load"}},
		{name: "node/missing-module", files: ducttest.Files{"index.js": "require('left-pad');\nexports.handler = async (req, res) => res.send('x');\n"},
			status: failed, phrases: []string{"does not start", "left-pad"}},
		{name: "node/bad-package-json", files: ducttest.Files{"index.js": good["index.js"], "package.json": "{\"dependencies\": "},
			status: http.StatusBadRequest, phrases: []string{"package.json"}},
		{name: "node/dependency-outside", files: ducttest.Files{"index.js": good["index.js"], "package.json": `{"dependencies": {"x": "file:/etc"}}`},
			status: http.StatusBadRequest, phrases: []string{"package.json", "file:/etc", "outside the source"}},
		{name: "node/dependency-climbs-out", files: ducttest.Files{"index.js": good["index.js"], "package.json": `{"dependencies": {"x": "../../.."}}`},
			status: http.StatusBadRequest, phrases: []string{"package.json", "outside the source"}},
		{name: "node/main-outside", files: ducttest.Files{"index.js": good["index.js"], "package.json": `{"main": "../source.tar.gz"}`},
			status: http.StatusBadRequest, phrases: []string{"package.json", "main", "outside the source"}},
		// Python
		{name: "python/syntax-error", files: ducttest.Files{"main.py": "def handler(request)\n    return 'x'\n"},
			status: failed, phrases: []string{"does not start", "SyntaxError", "main.py"}},
		{name: "python/missing-handler", files: ducttest.Files{"main.py": "def other(request):\n    return 'x'\n"},
			status: failed, phrases: []string{"does not start", "handler"}},
		{name: "python/import-error", files: ducttest.Files{"main.py": "import no_such_module_here\ndef handler(request):\n    return 'x'\n"},
			status: failed, phrases: []string{"does not start", "no_such_module_here"}, stream: true},
		{name: "python/requirements-unreachable", files: ducttest.Files{"main.py": "def handler(request):\n    return 'x'\n", "requirements.txt": "six==1.16.0\n"},
			status: failed, phrases: []string{"pip", "index", "requirements.txt"}, stream: true},
		{name: "python/requirement-outside", files: ducttest.Files{"main.py": "def handler(request):\n    return 'x'\n", "requirements.txt": "six\n-e /usr/lib/python3/dist-packages\n"},
			status: http.StatusBadRequest, phrases: []string{"requirements.txt", "line 2", "outside the source"}},
		{name: "python/requirement-file-url", files: ducttest.Files{"main.py": "def handler(request):\n    return 'x'\n", "requirements.txt": "evil @ file:///etc/evil\n"},
			status: http.StatusBadRequest, phrases: []string{"requirements.txt", "line 1", "outside the source"}},
		// Go
		{name: "go/syntax-error", files: ducttest.Files{"fn.go": goHandle + "func Handle(w http.ResponseWriter, r *http.Request) {\n\tw.Write([]byte(\"x\")\n}\n"},
			status: failed, phrases: []string{"syntax error", "fn.go:6"}},
		{name: "go/missing-handle", files: ducttest.Files{"fn.go": goHandle + "func Serve(w http.ResponseWriter, r *http.Request) {}\n"},
			status: failed, phrases: []string{"no exported function Handle", "Serve"}},
		{name: "go/type-error", files: ducttest.Files{"fn.go": goHandle + "func Handle(w http.ResponseWriter, r *http.Request) {\n\tvar n int = \"x\"\n\t_ = n\n}\n"},
			status: failed, phrases: []string{"compile", "fn.go:6"}, stream: true},
		{name: "go/undefined", files: ducttest.Files{"fn.go": goHandle + "func Handle(w http.ResponseWriter, r *http.Request) {\n\tnope(w)\n}\n"},
			status: failed, phrases: []string{"compile", "fn.go:6", "undefined: nope"}},
		{name: "go/unsupported-signature", files: ducttest.Files{"fn.go": "package function\n\nfunc Handle(a, b, c int) string { return \"\" }\n"},
			status: failed, phrases: []string{"Handle", "signature"}},
		{name: "go/two-packages", files: ducttest.Files{"a.go": "package a\n", "b.go": "package b\n"},
			status: failed, phrases: []string{"packages a and b"}},
	}
}

// A Go function that panics while starting is refused at once, with the
// panic in the message.
func TestDeployGoInitPanic(t *testing.T) {
	s := ducttest.Start(t)
	start := time.Now()
	r := s.DeployRaw("boom", ducttest.Archive(t, ducttest.Files{"fn.go": "package function\n\nimport \"net/http\"\n\nfunc init() { panic(\"boom at init\") }\n\nfunc Handle(w http.ResponseWriter, r *http.Request) {}\n"}), "")
	if r.Status != 422 {
		t.Fatalf("status %d: %v", r.Status, r.Problem)
	}
	if d := fmt.Sprint(r.Problem["detail"]); !strings.Contains(d, "boom at init") {
		t.Fatalf("detail %q lacks the panic", d)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("refusal took %s", took)
	}
}
