package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duct-dev/duct"
)

func TestLogWriterRedactsAndSplits(t *testing.T) {
	var lines []string
	lw := newLogWriter(func(l string) { lines = append(lines, l) }, "/data/tmp/deploy-1/src", "/data/tmp/deploy-1/artifact")
	lw.Printf("$ %s", "go build -o /data/tmp/deploy-1/artifact/bin/fn")
	lw.Write([]byte("/data/tmp/deploy-1/src/fn.go:3: x\r\nhalf a "))
	lw.Write([]byte("line\nunfinished /data/tmp/deploy-1/src"))
	want := []string{"$ go build -o <artifact>/bin/fn", "<source>/fn.go:3: x", "half a line"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("progress got %q, want %q", lines, want)
	}
	if got, want := lw.String(), strings.Join(want, "\n")+"\nunfinished <source>"; got != want {
		t.Errorf("log got %q, want %q", got, want)
	}
	lw.Write([]byte(strings.Repeat("x", 3*maxLine) + "\n"))
	if n := len(lines[len(lines)-1]); n > maxLine || n < maxLine-100 {
		t.Errorf("a long line is kept at %d bytes, want at most %d", n, maxLine)
	}
}

func TestGoSignatureProblem(t *testing.T) {
	cases := []struct {
		decl string
		why  string // "" when accepted
	}{
		{"func Handle(w http.ResponseWriter, r *http.Request) {}", ""},
		{"func Handle(ctx context.Context, in Order) (Receipt, error) { return Receipt{}, nil }", ""},
		{"func Handle(ctx context.Context, in []byte) error { return nil }", ""},
		{"func Handle(ctx context.Context) error { return nil }", ""},
		{"func Handle(in map[string]any) (any, error) { return nil, nil }", ""},
		{"func Handle() {}", ""},
		{"func Handle(ctx Ctx, in Order) error { return nil }", ""}, // Ctx may be an alias
		{"var Handle = http.HandlerFunc(nil)", ""},
		{"func Handle(a, b, c int) {}", "it takes 3 parameters"},
		{"func Handle(ctx context.Context, in ...string) error { return nil }", "it is variadic"},
		{"func Handle() (int, int, error) { return 0, 0, nil }", "it returns 3 results"},
		{"func Handle(in Order) string { return \"\" }", "the last result must be an error"},
		{"func Handle(n int, in Order) error { return nil }", "the first of two parameters must be a context.Context"},
		{"func Handle(r *http.Request, w http.ResponseWriter) {}", "the first of two parameters must be a context.Context"},
		{"func Handle(w http.ResponseWriter, r http.Request) {}", "an http handler takes"},
		{"func Handle(w http.ResponseWriter, r *http.Request) error { return nil }", "an http handler takes"},
		{"func Handle[T any](ctx context.Context, in T) error { return nil }", "it is generic"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		src := "package function\n\nimport (\n\t\"context\"\n\t\"net/http\"\n)\n\nvar _ context.Context\nvar _ http.Handler\n\n" +
			"type Order struct{}\ntype Receipt struct{}\ntype Ctx = context.Context\n\n" + c.decl + "\n"
		if err := os.WriteFile(filepath.Join(dir, "fn.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		pkg, err := inspectGo(dir)
		if err != nil {
			t.Fatalf("%s: %v", c.decl, err)
		}
		d := pkg.exports["Handle"]
		if d == nil {
			t.Fatalf("%s: Handle not found", c.decl)
		}
		got := d.signatureProblem()
		switch {
		case c.why == "" && got != "":
			t.Errorf("%s: refused: %s", c.decl, got)
		case c.why != "" && !strings.Contains(got, c.why):
			t.Errorf("%s: got %q, want it to say %q", c.decl, got, c.why)
		case c.why != "" && !strings.HasPrefix(got, "fn.go:15: Handle has an unsupported signature"):
			t.Errorf("%s: got %q, want the place and the name first", c.decl, got)
		}
	}
}

func TestPackageManagerReasons(t *testing.T) {
	pipOut := `WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError(': Failed to establish a new connection: [Errno -2] Name or service not known')': /simple/six/
ERROR: Could not find a version that satisfies the requirement six==1.16.0 (from versions: none)
ERROR: No matching distribution found for six==1.16.0
`
	got := pipReason(pipOut)
	for _, want := range []string{"pip could not install the packages in requirements.txt", "No matching distribution found for six==1.16.0", "no package index is reachable"} {
		if !strings.Contains(got, want) {
			t.Errorf("pip reason %q does not say %q", got, want)
		}
	}
	npmOut := `npm error code E404
npm error 404 Not Found - GET https://registry.npmjs.org/no-such-pkg-x - Not found
npm error 404  'no-such-pkg-x@*' is not in this registry.
npm error A complete log of this run can be found in: /root/.npm/_logs/x-debug-0.log
`
	got = npmReason("install", npmOut)
	if !strings.Contains(got, "404 Not Found - GET https://registry.npmjs.org/no-such-pkg-x") || strings.Contains(got, "/root/") ||
		strings.Contains(got, "not reachable") {
		t.Errorf("npm reason %q", got)
	}
}

func TestKeyNamesBuildInputs(t *testing.T) {
	b := New(Config{})
	base := duct.Function{Name: "f", Runtime: duct.RuntimeNode, Handler: "handler", Signature: duct.SignatureHTTP}
	key := b.Key(base, "sha256:aa")
	same := base
	same.Name, same.Env, same.Memory, same.Timeout = "g", map[string]string{"A": "b"}, 512*duct.MiB, duct.Duration(5)
	if b.Key(same, "sha256:aa") != key {
		t.Error("the name, environment and limits change the build key: they are not build inputs")
	}
	for what, f := range map[string]func(*duct.Function){
		"handler":   func(f *duct.Function) { f.Handler = "other" },
		"entry":     func(f *duct.Function) { f.Entry = "x.js" },
		"runtime":   func(f *duct.Function) { f.Runtime = duct.RuntimePython },
		"signature": func(f *duct.Function) { f.Signature = duct.SignatureEvent },
		"command":   func(f *duct.Function) { f.Command = []string{"run"} },
	} {
		g := base
		f(&g)
		if b.Key(g, "sha256:aa") == key {
			t.Errorf("the %s does not change the build key", what)
		}
	}
	if b.Key(base, "sha256:bb") == key {
		t.Error("the source does not change the build key")
	}
}

func TestLocalPathsStayInside(t *testing.T) {
	for version, refused := range map[string]bool{
		"^7.0.0": false, "npm:is-number@7": false, "github:user/repo": false, "file:./lib/x": false, "./lib/x": false,
		"file:/etc": true, "file:../x": true, "link:/usr": true, "/usr/lib": true, "../../x": true, "~/x": true,
		"file:///etc/passwd": true, "file:lib/../../x": true,
	} {
		p, local := localDependency(version)
		if got := local && !insideSource(p); got != refused {
			t.Errorf("npm dependency %q: refused %v, want %v", version, got, refused)
		}
	}
	for req, refused := range map[string]bool{
		"six==1.16.0": false, "requests[socks] >= 2  # comment": false, "-r other.txt": false, "-e ./pkg": false,
		"--index-url https://example.com/simple": false, "# /etc/x": false,
		"/etc/pkg": true, "-e /usr/lib/x": true, "-r ../../secrets.txt": true, "x @ file:///etc/x": true,
		"file:/etc/x": true, "--constraint /c.txt": true, "~/pkg": true,
	} {
		path := filepath.Join(t.TempDir(), "requirements.txt")
		os.WriteFile(path, []byte("ok==1\n"+req+"\n"), 0o644)
		if got := checkRequirements(path) != nil; got != refused {
			t.Errorf("requirement %q: refused %v, want %v", req, got, refused)
		}
	}
}
