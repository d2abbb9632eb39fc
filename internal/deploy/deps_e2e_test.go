package deploy_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/ducttest"
)

// TestDeployDependencies installs real dependencies from the npm
// registry and the Go module proxy. It needs the network, so -short
// skips it.
func TestDeployDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the npm registry and the Go module proxy")
	}
	s := ducttest.Start(t)
	cases := []struct {
		name  string
		files ducttest.Files
		path  string
		want  string
	}{
		{"node-npm", ducttest.Files{
			"package.json": `{"name": "deps", "dependencies": {"is-number": "7.0.0"}}`,
			"index.js": `const isNumber = require("is-number");
exports.handler = async (req, res) => res.send(req.query.v + " " + (isNumber(req.query.v) ? "is" : "is not") + " a number");`,
		}, "/?v=42", "42 is a number"},
		{"go-module", ducttest.Files{"fn.go": `package function

import (
	"net/http"

	"github.com/google/uuid"
)

func Handle(w http.ResponseWriter, r *http.Request) {
	u := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://duct.dev"))
	w.Write([]byte(u.String()))
}
`}, "/", "39baa718-402b-501b-b8dd-2b00e284b527"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := deployStream(t, s, c.name, ducttest.Archive(t, c.files), "")
			if r.result == nil {
				t.Fatalf("deploy: %v", r.err)
			}
			if len(r.logLines()) == 0 {
				t.Errorf("no build log streamed")
			}
			got := s.Invoke(c.name, "GET", c.path, "")
			if got.Status != http.StatusOK || (c.want != "" && got.Body != c.want) {
				t.Errorf("answers %d %q, want %q", got.Status, got.Body, c.want)
			}
		})
	}
}

// TestBuildTimeout: a build that outlives the server's build time limit
// is stopped and fails with a message saying so. The build here waits on
// a module proxy that never answers.
func TestBuildTimeout(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer hang.Close()
	t.Setenv("GOPROXY", hang.URL)
	t.Setenv("GOSUMDB", "off")
	s := ducttest.Start(t, func(c *daemon.Config) {
		c.BuildTimeout = 2 * time.Second
		c.GoModCache = t.TempDir()
	})
	s.Deploy("good", good, "")
	before := stateOf(t, s, "good")

	src := ducttest.Files{"fn.go": `package function

import (
	"net/http"

	"example.com/never/answers"
)

func Handle(w http.ResponseWriter, r *http.Request) { answers.Write(w) }
`}
	begin := time.Now()
	r := deployStream(t, s, "good", ducttest.Archive(t, src), "")
	if took := time.Since(begin); took > 20*time.Second {
		t.Errorf("the build was stopped after %s, with a limit of 2s", took)
	}
	if r.err == nil || r.err["status"] != float64(http.StatusUnprocessableEntity) {
		t.Fatalf("deploy: result %v, error %v", r.result, r.err)
	}
	detail, _ := r.err["detail"].(string)
	wantPhrases(t, "detail", detail, "build took longer", "2s")
	log, _ := r.err["buildLog"].(string)
	wantPhrases(t, "build log", log, "$ go mod tidy", "build failed: the build took longer")
	noLeaks(t, "build log", log, s.Config.DataDir)
	serving(t, s, "good", "good v1", before)
	// The limit is on each build, not on the server: the next one works.
	next := ducttest.Files{"index.js": `exports.handler = async (req, res) => res.send("after");`}
	if r := s.DeployRaw("after", ducttest.Archive(t, next), ""); r.Status != http.StatusCreated {
		t.Errorf("deploy after a timeout: %d %v", r.Status, r.Problem)
	}
}
