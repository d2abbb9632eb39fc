package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/ducttest"
)

// createToken issues a token through the API with the server's admin
// token.
func createToken(t *testing.T, s *ducttest.Server, name string, role duct.Role) duct.NewToken {
	t.Helper()
	r := s.Do("POST", "/api/v1/tokens", strings.NewReader(`{"name": "`+name+`", "role": "`+string(role)+`"}`))
	var nt duct.NewToken
	if r.Status != http.StatusCreated || json.Unmarshal([]byte(r.Body), &nt) != nil || nt.Token == "" {
		t.Fatalf("create token %s: %d %s", name, r.Status, r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("a new token's answer may be cached: Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	return nt
}

// echoAuth answers with the Authorization header it was given.
var echoAuth = ducttest.Files{"index.js": `exports.handler = async (req, res) => res.send("auth=" + (req.get("authorization") || "none"));`}

// TestAccess checks every route and the gateway against every role: a
// request with no token or a bad one is 401, with a role short of the
// route's 403, otherwise it reaches the handler. Routes that change things
// are called on targets that do not exist, so that what the handler says
// (404, 400) changes nothing.
func TestAccess(t *testing.T) {
	s := ducttest.Start(t, func(c *daemon.Config) { c.DefaultInvoke = "" })
	s.Deploy("locked", echoAuth, "") // the server's default: token
	s.Deploy("open", echoAuth, "invoke: public\n")
	tokens := map[string]string{}
	for _, r := range duct.Roles {
		tokens[string(r)] = createToken(t, s, "t-"+string(r), r).Token
	}
	tokens["bad"] = "duct_0123456789ab_" + strings.Repeat("A", 43)
	tokens["none"] = ""

	all := "admin deploy invoke read"
	routes := []struct {
		method, path, body string
		allowed            string // roles, space-separated
	}{
		{"GET", "/api/v1/status", "", "admin deploy read"},
		{"GET", "/api/v1/whoami", "", all},
		{"GET", "/api/v1/functions", "", "admin deploy read"},
		{"GET", "/api/v1/functions/nope", "", "admin deploy read"},
		{"DELETE", "/api/v1/functions/nope", "", "admin deploy"},
		{"POST", "/api/v1/functions/nope/versions", "", "admin deploy"},
		{"GET", "/api/v1/functions/nope/versions", "", "admin deploy read"},
		{"GET", "/api/v1/functions/nope/versions/1", "", "admin deploy read"},
		{"POST", "/api/v1/functions/nope/rollback", "", "admin deploy"},
		{"GET", "/api/v1/functions/nope/logs", "", "admin deploy read"},
		{"GET", "/api/v1/tokens", "", "admin"},
		{"POST", "/api/v1/tokens", "{}", "admin"},
		{"DELETE", "/api/v1/tokens/000000000000", "", "admin"},
		{"GET", "/api/v1/secrets", "", "admin deploy"},
		{"PUT", "/api/v1/secrets/NOPE", "{}", "admin"},
		{"DELETE", "/api/v1/secrets/NOPE", "", "admin"},
		{"GET", "/api/v1/no-such-endpoint", "", all},
		{"GET", "/fn/locked", "", "admin deploy invoke"},
	}
	for _, rt := range routes {
		for who, tok := range tokens {
			r := s.DoToken(tok, rt.method, rt.path, strings.NewReader(rt.body))
			allowed := strings.Contains(" "+rt.allowed+" ", " "+who+" ")
			switch {
			case who == "none" || who == "bad":
				if r.Status != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Bearer realm="duct"`) {
					t.Errorf("%s %s with %s token: %d (WWW-Authenticate %q), want 401 and a challenge",
						rt.method, rt.path, who, r.Status, r.Header.Get("WWW-Authenticate"))
				}
			case !allowed:
				if r.Status != http.StatusForbidden || !strings.Contains(r.Body, "role "+who) {
					t.Errorf("%s %s as %s: %d %s, want 403 naming the role", rt.method, rt.path, who, r.Status, r.Body)
				}
			case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
				t.Errorf("%s %s as %s: %d %s, want it let through", rt.method, rt.path, who, r.Status, r.Body)
			}
			if r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden {
				if r.Header.Get("Content-Type") != "application/problem+json" || r.Header.Get("X-Request-Id") == "" {
					t.Errorf("%s %s as %s: refusal is not a problem document: %v", rt.method, rt.path, who, r.Header)
				}
			}
		}
	}
	// The OpenAPI document needs no token.
	if r := s.DoToken("", "GET", "/api/v1/openapi.json", nil); r.Status != http.StatusOK {
		t.Errorf("openapi.json without a token: %d", r.Status)
	}

	// whoami names the token.
	var p duct.Principal
	r := s.DoToken(tokens["read"], "GET", "/api/v1/whoami", nil)
	if json.Unmarshal([]byte(r.Body), &p); p.Name != "t-read" || p.Role != duct.RoleRead || len(p.TokenID) != 12 {
		t.Errorf("whoami: %s", r.Body)
	}
	if r := s.Get("/api/v1/whoami"); !strings.Contains(r.Body, `"name": "DUCT_ADMIN_TOKEN"`) {
		t.Errorf("whoami with DUCT_ADMIN_TOKEN: %s", r.Body)
	}

	// A token function: served with an invoke token, which the function
	// never sees; a public function sees Authorization as sent.
	if r := s.DoToken(tokens["invoke"], "GET", "/fn/locked", nil); r.Status != 200 || r.Body != "auth=none" {
		t.Errorf("token function with an invoke token: %d %q, want 200 without the header", r.Status, r.Body)
	}
	if r := s.DoToken("", "GET", "/fn/locked", nil, "Authorization", "Basic dXNlcjpwdw=="); r.Status != http.StatusUnauthorized {
		t.Errorf("token function with Basic auth: %d", r.Status)
	}
	if r := s.DoToken(tokens["admin"], "GET", "/fn/open", nil); r.Body != "auth=Bearer "+tokens["admin"] {
		t.Errorf("public function: %q, want the Authorization header as sent", r.Body)
	}
	if r := s.DoToken("", "GET", "/fn/open", nil); r.Status != 200 || r.Body != "auth=none" {
		t.Errorf("public function without a token: %d %q", r.Status, r.Body)
	}
	// A refused invocation ran nothing: only the served ones are reported.
	ducttest.Eventually(t, 5*time.Second, "reports of locked", func() bool {
		return strings.Count(s.Get("/api/v1/functions/locked/logs?since=1m").Body, `"stream":"report"`) == 4
	})
	time.Sleep(200 * time.Millisecond)
	if n := strings.Count(s.Get("/api/v1/functions/locked/logs?since=1m").Body, `"stream":"report"`); n != 4 {
		t.Errorf("locked has %d reports, want 4 (admin, deploy, invoke in the table and invoke after)", n)
	}
}

// TestSharedStore runs two servers on one NATS. Tokens: create, list and
// revoke; a revoked token is refused at once on the server that revoked
// it, and within a second on the other (which cached it as valid).
// Secrets: a value set on one reaches the other's instances.
func TestSharedStore(t *testing.T) {
	ext, err := broker.Open(t.Context(), broker.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ext.Close() }) // after the servers' cleanups: they stop first
	key := bytes.Repeat([]byte{9}, 32)
	shared := func(c *daemon.Config) { c.NATS, c.SecretKey, c.Spares = ext.ClientURL(), key, -1 }
	a := ducttest.Start(t, shared)
	b := ducttest.Start(t, shared)

	ci := createToken(t, a, "ci", duct.RoleDeploy)
	other := createToken(t, a, "other", duct.RoleRead)
	var list []duct.TokenInfo
	r := b.Get("/api/v1/tokens")
	if json.Unmarshal([]byte(r.Body), &list); len(list) != 2 || list[0].ID != ci.ID || list[0].CreatedBy != "DUCT_ADMIN_TOKEN" ||
		list[0].Role != duct.RoleDeploy || strings.Contains(r.Body, ci.Token) || strings.Contains(r.Body, "sha256") {
		t.Fatalf("tokens listed on b: %s", r.Body)
	}
	for _, s := range []*ducttest.Server{a, b} {
		if r := s.DoToken(ci.Token, "GET", "/api/v1/functions", nil); r.Status != 200 {
			t.Fatalf("ci token before revocation: %d %s", r.Status, r.Body)
		}
	}
	if r := a.Do("DELETE", "/api/v1/tokens/"+ci.ID, nil); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := a.DoToken(ci.Token, "GET", "/api/v1/functions", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("revoked token on the revoking server: %d", r.Status)
	}
	start := time.Now()
	for b.DoToken(ci.Token, "GET", "/api/v1/functions", nil).Status != http.StatusUnauthorized {
		if time.Since(start) > time.Second {
			t.Fatal("the other server still accepts the revoked token after a second")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := b.DoToken(other.Token, "GET", "/api/v1/functions", nil); r.Status != 200 {
		t.Errorf("the other token after a revocation: %d", r.Status)
	}
	if r := a.Do("DELETE", "/api/v1/tokens/"+ci.ID, nil); r.Status != http.StatusNotFound {
		t.Errorf("revoking twice: %d", r.Status)
	}

	// A secret set on a serves on b, and so does its next value.
	if r := putSecret(a, "API_KEY", "shared-1"); r.Status != http.StatusCreated {
		t.Fatalf("set on a: %d %s", r.Status, r.Body)
	}
	a.Deploy("uses", showSecret, "secrets: [API_KEY]\n")
	ducttest.Eventually(t, 10*time.Second, "b serves the secret", func() bool {
		return strings.Contains(b.Invoke("uses", "GET", "/", "").Body, `"env": "shared-1"`)
	})
	putSecret(a, "API_KEY", "shared-2")
	ducttest.Eventually(t, 10*time.Second, "b serves the new value", func() bool {
		return strings.Contains(b.Invoke("uses", "GET", "/", "").Body, `"env": "shared-2"`)
	})

	for _, body := range []string{`{"name": "x", "role": "root"}`, `{"name": "", "role": "read"}`, `{"role": "read"}`, `{"name": "x"}`, `{"name": "x", "role": "read", "extra": 1}`} {
		if r := a.Do("POST", "/api/v1/tokens", strings.NewReader(body)); r.Status != http.StatusBadRequest {
			t.Errorf("create %s: %d %s", body, r.Status, r.Body)
		}
	}
}

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestFirstStartToken: a server started without DUCT_ADMIN_TOKEN on an
// empty store creates an admin token and logs it once, at WARN; it works,
// and a restart neither shows it again nor makes another.
func TestFirstStartToken(t *testing.T) {
	dir := t.TempDir()
	start := func(log *syncBuffer) *ducttest.Server {
		return ducttest.StartConfig(t, daemon.Config{Addr: "127.0.0.1:0", DataDir: dir, NoSync: true, Spares: -1,
			Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	}
	var log1 syncBuffer
	s := start(&log1)
	tokRE := regexp.MustCompile(`duct_[0-9a-f]{12}_[A-Za-z0-9_-]{43}`)
	found := tokRE.FindAllString(log1.String(), -1)
	if len(found) != 1 {
		t.Fatalf("want the token logged once, found %d:\n%s", len(found), log1.String())
	}
	tok := found[0]
	var line string
	for _, l := range strings.Split(log1.String(), "\n") {
		if strings.Contains(l, tok) {
			line = l
		}
	}
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "shown only this once") {
		t.Errorf("the token's log line: %s", line)
	}
	if r := s.DoToken("", "GET", "/api/v1/functions", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.Status)
	}
	var p duct.Principal
	r := s.DoToken(tok, "GET", "/api/v1/whoami", nil)
	if json.Unmarshal([]byte(r.Body), &p); r.Status != 200 || p.Role != duct.RoleAdmin {
		t.Fatalf("the first token: %d %s", r.Status, r.Body)
	}
	s.Stop()

	var log2 syncBuffer
	s = start(&log2)
	if tokRE.MatchString(log2.String()) {
		t.Errorf("a restart logged a token:\n%s", log2.String())
	}
	if r := s.DoToken(tok, "GET", "/api/v1/tokens", nil); r.Status != 200 || strings.Count(r.Body, `"id"`) != 1 {
		t.Errorf("after a restart: %d %s", r.Status, r.Body)
	}
}
