package gateway_test

import (
	"testing"

	"github.com/duct-dev/duct/internal/ducttest"
)

func TestSmoke(t *testing.T) {
	s := ducttest.Start(t)
	s.Deploy("hello-node", ducttest.Files{"index.js": `exports.handler = async (req, res) => { console.log("hi from node"); res.send("node " + req.method + " " + req.path + " " + JSON.stringify(req.query)); };`}, "")
	s.Deploy("hello-py", ducttest.Files{"main.py": "def handler(request):\n    print('hi from py')\n    return 'py ' + request.method + ' ' + request.path + ' ' + str(request.args)\n"}, "")
	s.Deploy("hello-go", ducttest.Files{"fn.go": "package function\nimport (\"fmt\"; \"net/http\")\nfunc Handle(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, \"go %s %s %s\", r.Method, r.URL.Path, r.URL.RawQuery) }\n"}, "")
	for _, fn := range []string{"hello-node", "hello-py", "hello-go"} {
		r := s.Invoke(fn, "GET", "/anything?x=1", "")
		t.Logf("%s: %d %q", fn, r.Status, r.Body)
		if r.Status != 200 {
			t.Errorf("%s: status %d body %s", fn, r.Status, r.Body)
		}
	}
}
