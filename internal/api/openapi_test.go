package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/duct-dev/duct"
)

// routes are the patterns New registers, as api.go spells them. The test
// reads api.go and fails when it registers a route this list lacks (or
// drops one it has), so that a new endpoint cannot ship undocumented:
// add it here and to openapi.json.
var routes = []string{
	"GET /api/v1/status",
	"GET /api/v1/whoami",
	"GET /api/v1/functions",
	"GET /api/v1/functions/{name}",
	"DELETE /api/v1/functions/{name}",
	"POST /api/v1/functions/{name}/versions",
	"GET /api/v1/functions/{name}/versions",
	"GET /api/v1/functions/{name}/versions/{n}",
	"POST /api/v1/functions/{name}/rollback",
	"GET /api/v1/functions/{name}/logs",
	"GET /api/v1/functions/{name}/triggers",
	"PUT /api/v1/functions/{name}/triggers",
	"POST /api/v1/events",
	"GET /api/v1/invocations/{id}",
	"GET /api/v1/tokens",
	"POST /api/v1/tokens",
	"DELETE /api/v1/tokens/{id}",
	"GET /api/v1/secrets",
	"PUT /api/v1/secrets/{name}",
	"DELETE /api/v1/secrets/{name}",
	"GET /api/v1/topics",
	"PUT /api/v1/topics/{name}",
	"GET /api/v1/topics/{name}",
	"DELETE /api/v1/topics/{name}",
	"POST /api/v1/topics/{name}/publish",
	"GET /api/v1/subscriptions",
	"PUT /api/v1/subscriptions/{name}",
	"GET /api/v1/subscriptions/{name}",
	"DELETE /api/v1/subscriptions/{name}",
	"POST /api/v1/subscriptions/{name}/pull",
	"POST /api/v1/subscriptions/{name}/acknowledge",
	"POST /api/v1/subscriptions/{name}/modify-ack-deadline",
	"POST /api/v1/subscriptions/{name}/seek",
	"GET /api/v1/openapi.json",
}

// fallback is the pattern that answers 404 for every other path under
// the prefix: it is not an operation.
const fallback = "/api/v1/"

// operationMethods are the path item keys that name operations.
var operationMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadDoc(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(openapiDoc))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if dec.More() {
		t.Fatal("openapi.json holds more than one JSON value")
	}
	return doc
}

func object(t *testing.T, v any, what string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: want a JSON object, got %T", what, v)
	}
	return m
}

func TestOpenAPIDocument(t *testing.T) {
	doc := loadDoc(t)
	if v, _ := doc["openapi"].(string); !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	info := object(t, doc["info"], "info")
	for _, k := range []string{"title", "version"} {
		if s, _ := info[k].(string); s == "" {
			t.Errorf("info.%s is missing", k)
		}
	}
	// Operation ids are unique, and every operation is tagged and answers
	// something.
	seen := map[string]string{}
	for path, item := range object(t, doc["paths"], "paths") {
		for _, m := range operationMethods {
			o, ok := object(t, item, path)[m]
			if !ok {
				continue
			}
			op := object(t, o, m+" "+path)
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s %s has no operationId", m, path)
			} else if prev, dup := seen[id]; dup {
				t.Errorf("operationId %q is used by %s and by %s %s", id, prev, m, path)
			}
			seen[id] = m + " " + path
			if tags, _ := op["tags"].([]any); len(tags) == 0 {
				t.Errorf("%s %s has no tags", m, path)
			}
			if rs, _ := op["responses"].(map[string]any); len(rs) == 0 {
				t.Errorf("%s %s has no responses", m, path)
			}
		}
	}
}

// TestOpenAPIRoutes checks the document against the routes: the list
// above against api.go, every route against the document, and every API
// operation in the document against the mux that New builds.
func TestOpenAPIRoutes(t *testing.T) {
	// Routes are registered in api.go, and by groups in their own files.
	var src []byte
	for _, f := range []string{"api.go", "pubsub.go", "invocations.go", "events.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	// a.route("GET /api/v1/…", …) and a.mux.HandleFunc("GET /api/v1/…", …)
	re := regexp.MustCompile(`a\.(?:route|mux\.HandleFunc|mux\.Handle)\(\s*"([^"]+)"`)
	var found []string
	for _, m := range re.FindAllSubmatch(src, -1) {
		if p := string(m[1]); p != fallback {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		t.Fatal("found no route registrations in api.go: has the way routes are registered changed?")
	}
	want := slices.Sorted(slices.Values(routes))
	slices.Sort(found)
	if !slices.Equal(found, want) {
		t.Errorf("api.go registers\n\t%s\nbut the test lists\n\t%s\nupdate routes, and openapi.json", strings.Join(found, "\n\t"), strings.Join(want, "\n\t"))
	}

	doc := loadDoc(t)
	paths := object(t, doc["paths"], "paths")
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		item, ok := paths[path]
		if !ok {
			t.Errorf("route %s: path %s is not in openapi.json", r, path)
			continue
		}
		if _, ok := object(t, item, path)[strings.ToLower(method)]; !ok {
			t.Errorf("route %s: openapi.json has no %s operation on %s", r, strings.ToLower(method), path)
		}
	}

	// Each API operation the document describes is served by the route
	// of the same method and pattern, not by the 404 fallback.
	a := New(Config{})
	sample := regexp.MustCompile(`\{[^}]+\}`)
	for path, item := range paths {
		if !strings.HasPrefix(path, "/api/") {
			continue
		}
		for _, m := range operationMethods {
			if _, ok := object(t, item, path)[m]; !ok {
				continue
			}
			concrete := sample.ReplaceAllStringFunc(path, func(p string) string {
				if p == "{n}" {
					return "1"
				}
				return "hello"
			})
			req := httptest.NewRequest(strings.ToUpper(m), concrete, nil)
			_, pattern := a.mux.Handler(req)
			if want := strings.ToUpper(m) + " " + path; pattern != want {
				t.Errorf("openapi.json documents %s, but %s %s is routed to %q", want, strings.ToUpper(m), concrete, pattern)
			}
		}
	}

	// Each operation lists the roles that may call it, as the route's
	// permission says; the OpenAPI document alone needs no token.
	for pattern, perm := range a.perms {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			continue // the fallback
		}
		item, _ := paths[path].(map[string]any)
		o, _ := item[strings.ToLower(method)].(map[string]any)
		if o == nil {
			continue // reported above
		}
		var want, got []string
		for _, r := range duct.Roles {
			if r.Allows(perm) {
				want = append(want, string(r))
			}
		}
		xs, _ := o["x-duct-roles"].([]any)
		for _, x := range xs {
			s, _ := x.(string)
			got = append(got, s)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: x-duct-roles %v, want %v (permission %s)", pattern, got, want, perm)
		}
	}
	if sec, ok := object(t, paths["/api/v1/openapi.json"], "openapi.json")["get"].(map[string]any)["security"].([]any); !ok || len(sec) != 0 {
		t.Error("GET /api/v1/openapi.json does not say it needs no token (security: [])")
	}

	// The gateway is documented beside the API, under its own tag.
	for _, p := range []string{"/fn/{name}", "/fn/{name}/{path}"} {
		item, ok := paths[p]
		if !ok {
			t.Errorf("the gateway path %s is not in openapi.json", p)
			continue
		}
		for _, m := range []string{"get", "post", "put", "patch", "delete"} {
			o, ok := object(t, item, p)[m]
			if !ok {
				t.Errorf("openapi.json has no %s operation on %s", m, p)
				continue
			}
			if tags, _ := object(t, o, m+" "+p)["tags"].([]any); !slices.Contains(tags, any("gateway")) {
				t.Errorf("%s %s is not tagged gateway", m, p)
			}
		}
	}
}

// TestOpenAPIRefs resolves every $ref in the document, and checks that
// every schema in components is used.
func TestOpenAPIRefs(t *testing.T) {
	doc := loadDoc(t)
	used := map[string]bool{}
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"]; ok {
				s, _ := r.(string)
				if _, err := resolve(doc, s); err != "" {
					t.Errorf("%s: $ref %q: %s", at, s, err)
				}
				used[s] = true
			}
			for k, x := range v {
				walk(x, at+"/"+k)
			}
		case []any:
			for i, x := range v {
				walk(x, at+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(doc, "#")
	if len(used) == 0 {
		t.Fatal("no $ref in openapi.json")
	}
	schemas := object(t, object(t, doc["components"], "components")["schemas"], "components.schemas")
	for name := range schemas {
		if !used["#/components/schemas/"+name] {
			t.Errorf("schema %s is defined but never used", name)
		}
	}
}

// resolve follows a local JSON pointer reference ("#/a/b") in doc. It
// returns a reason when it cannot.
func resolve(doc map[string]any, ref string) (any, string) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, "not a reference inside the document"
	}
	var cur any = doc
	for _, tok := range strings.Split(p, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, "passes through a value that is not an object"
		}
		if cur, ok = m[tok]; !ok {
			return nil, "no " + strconv.Quote(tok)
		}
	}
	return cur, ""
}

// TestOpenAPIServed: the API serves the embedded document, without
// authentication.
func TestOpenAPIServed(t *testing.T) {
	a := New(Config{})
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/v1/openapi.json: %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !bytes.Equal(rec.Body.Bytes(), openapiDoc) {
		t.Error("the served document differs from openapi.json")
	}
	// Every other operation needs a token: without one, the answer is a
	// 401 problem with a challenge, whatever the route.
	paths := object(t, loadDoc(t)["paths"], "paths")
	sample := regexp.MustCompile(`\{[^}]+\}`)
	for path, item := range paths {
		if !strings.HasPrefix(path, "/api/") || path == "/api/v1/openapi.json" {
			continue
		}
		for _, m := range operationMethods {
			if _, ok := object(t, item, path)[m]; !ok {
				continue
			}
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, httptest.NewRequest(strings.ToUpper(m), sample.ReplaceAllString(path, "X"), nil))
			if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" ||
				rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s without a token: %d, WWW-Authenticate %q, Content-Type %q; want a 401 problem with a challenge",
					m, path, rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Header().Get("Content-Type"))
			}
		}
	}
}
