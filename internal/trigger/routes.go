package trigger

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/id"
	"github.com/duct-dev/duct/internal/problem"
)

// Routes is an immutable table of HTTP triggers: method and path to
// function. The daemon's top handler consults it for every request that
// is not Duct's own (/fn/, /api/, /metrics, /healthz, /readyz), so
// looking up takes no lock.
type Routes struct {
	exact    map[string][]route // path → routes on it
	prefixes []route            // longest prefix first
}

type route struct {
	fn      string
	path    string // as declared
	base    string // path without CatchAll
	prefix  bool
	methods []string // empty: any
}

// Match finds the function serving method and path: an exact route
// first, then the longest prefix route ("/hooks/*" serves /hooks and
// everything under /hooks/). When routes exist for the path but none
// for the method, fn is empty and allow lists the methods they take.
func (rt *Routes) Match(method, path string) (fn string, allow []string, found bool) {
	if rt == nil {
		return "", nil, false
	}
	if rs, ok := rt.exact[path]; ok {
		return pick(rs, method)
	}
	for i := range rt.prefixes {
		r := &rt.prefixes[i]
		if path == r.base || strings.HasPrefix(path, r.base+"/") {
			// Every prefix route of this base, for the method check.
			j := i
			for j < len(rt.prefixes) && rt.prefixes[j].base == r.base {
				j++
			}
			return pick(rt.prefixes[i:j], method)
		}
	}
	return "", nil, false
}

// Serve serves a request the table routes to a function through serve
// (the gateway's ServeFunction; the function sees the request's own
// path), and reports whether it did. A path routed for other methods
// only is answered 405 with the methods it takes.
func (rt *Routes) Serve(w http.ResponseWriter, r *http.Request, serve func(w http.ResponseWriter, r *http.Request, fn, path string)) bool {
	fn, allow, found := rt.Match(r.Method, r.URL.Path)
	switch {
	case !found:
		return false
	case fn == "":
		reqID := id.New()
		methods := strings.Join(allow, ", ")
		w.Header().Set("X-Request-Id", reqID)
		w.Header().Set("Allow", methods)
		problem.WriteStatus(w, r, reqID, http.StatusMethodNotAllowed, "Method Not Allowed", r.URL.Path+" takes "+methods+", not "+r.Method)
		return true
	}
	serve(w, r, fn, r.URL.Path)
	return true
}

func pick(rs []route, method string) (string, []string, bool) {
	var allow []string
	for _, r := range rs {
		if len(r.methods) == 0 || slices.Contains(r.methods, method) {
			return r.fn, nil, true
		}
		allow = append(allow, r.methods...)
	}
	slices.Sort(allow)
	return "", slices.Compact(allow), true
}

// Empty reports whether the table has no route.
func (rt *Routes) Empty() bool { return rt == nil || len(rt.exact) == 0 && len(rt.prefixes) == 0 }

// buildRoutes makes the table of the HTTP triggers of fns (function →
// triggers). Two functions claiming the same method and path cannot both
// be deployed (Vet refuses the second); should it happen anyway (a
// rollback), the function whose name sorts first keeps the route, and the
// conflict is reported.
func buildRoutes(fns map[string][]duct.Trigger) (*Routes, []string) {
	rt := &Routes{exact: map[string][]route{}}
	names := make([]string, 0, len(fns))
	for fn := range fns {
		names = append(names, fn)
	}
	sort.Strings(names)
	var conflicts []string
	for _, fn := range names {
		for _, t := range fns[fn] {
			if t.HTTP == nil {
				continue
			}
			base, prefix := strings.CutSuffix(t.HTTP.Path, duct.CatchAll)
			r := route{fn: fn, path: t.HTTP.Path, base: base, prefix: prefix, methods: t.HTTP.Methods}
			if other, clash := rt.claimedBy(r); clash && other != fn {
				conflicts = append(conflicts, fmt.Sprintf("%s %s of function %q is served by function %q", methodList(r.methods), r.path, fn, other))
				continue
			}
			if prefix {
				rt.prefixes = append(rt.prefixes, r)
			} else {
				rt.exact[base] = append(rt.exact[base], r)
			}
		}
	}
	// Longest first; routes of one base side by side.
	sort.SliceStable(rt.prefixes, func(i, j int) bool {
		a, b := rt.prefixes[i].base, rt.prefixes[j].base
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
	return rt, conflicts
}

// claimedBy returns the function holding a route that r would collide
// with: the same path (or the same prefix) and a method in common.
func (rt *Routes) claimedBy(r route) (string, bool) {
	var same []route
	if r.prefix {
		for _, p := range rt.prefixes {
			if p.base == r.base {
				same = append(same, p)
			}
		}
	} else {
		same = rt.exact[r.base]
	}
	for _, o := range same {
		if duct.MethodsOverlap(o.methods, r.methods) {
			return o.fn, true
		}
	}
	return "", false
}

func methodList(ms []string) string {
	if len(ms) == 0 {
		return "ANY"
	}
	return strings.Join(ms, ",")
}
