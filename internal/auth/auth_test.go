package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
	"github.com/duct-dev/duct/internal/store"
)

func openTokens(t *testing.T) *store.Tokens {
	t.Helper()
	b, err := broker.Open(t.Context(), broker.Config{DataDir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ts, err := store.OpenTokens(t.Context(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, secret, tok := generate()
		if len(id) != 12 || len(secret) != 43 || tok != "duct_"+id+"_"+secret {
			t.Fatalf("generate: id %q secret %q token %q", id, secret, tok)
		}
		gid, gsecret, ok := parse(tok)
		if !ok || gid != id || gsecret != secret {
			t.Fatalf("parse(%q) = %q %q %v", tok, gid, gsecret, ok)
		}
		if seen[secret] {
			t.Fatal("the same secret twice")
		}
		seen[secret] = true
	}
	for _, bad := range []string{"", "duct_", "duct_0123456789ab", "duct_0123456789ab_", "duct_0123456789AB_x",
		"duct_0123456789a_bx", "xduct_0123456789ab_x", "duct-0123456789ab_x", "duct_0123456789abcx"} {
		if _, _, ok := parse(bad); ok {
			t.Errorf("parse(%q) accepted it", bad)
		}
	}
}

// clock is a settable time for the cache.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCreateAuthenticateRevoke(t *testing.T) {
	ctx := t.Context()
	ts := openTokens(t)
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := New(Config{Tokens: ts, Now: clk.now})

	nt, err := s.Create(ctx, "ci", duct.RoleDeploy, "DUCT_ADMIN_TOKEN")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(nt.Token, "duct_"+nt.ID+"_") || nt.Role != duct.RoleDeploy || nt.CreatedBy != "DUCT_ADMIN_TOKEN" || !nt.CreatedAt.Equal(clk.now()) {
		t.Errorf("created %+v", nt)
	}
	// The store holds the digest only.
	rec, err := ts.Get(ctx, nt.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, _ := parse(nt.Token)
	if strings.Contains(rec.SHA256, secret) || len(rec.SHA256) != 64 {
		t.Errorf("stored record %+v", rec)
	}

	p, err := s.Authenticate(ctx, nt.Token)
	if err != nil || p != (duct.Principal{TokenID: nt.ID, Name: "ci", Role: duct.RoleDeploy}) {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	for _, bad := range []string{"", "nope", nt.Token + "x", nt.Token[:len(nt.Token)-1], "duct_" + nt.ID + "_" + strings.Repeat("A", 43),
		"duct_000000000000_" + secret} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, duct.ErrUnauthorized) {
			t.Errorf("Authenticate(%q) = %v, want unauthorized", bad, err)
		}
	}

	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0] != nt.TokenInfo {
		t.Errorf("List = %+v, %v", list, err)
	}
	if err := s.Revoke(ctx, nt.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, nt.Token); !errors.Is(err, duct.ErrUnauthorized) {
		t.Errorf("revoked token: %v", err)
	}
	if err := s.Revoke(ctx, nt.ID); !errors.Is(err, duct.ErrNotFound) {
		t.Errorf("second revoke: %v", err)
	}
	for _, bad := range []struct {
		name string
		role duct.Role
	}{{"", duct.RoleRead}, {"x", "root"}, {"x", ""}} {
		if _, err := s.Create(ctx, bad.name, bad.role, ""); !errors.Is(err, duct.ErrInvalid) {
			t.Errorf("Create(%q, %q) = %v", bad.name, bad.role, err)
		}
	}
}

// TestCache: a verification is reused for the TTL, and a revocation made
// elsewhere (another node, whose cache this one does not share) reaches
// this node through the watch long before the TTL runs out.
func TestCache(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ts := openTokens(t)
	clk := &clock{t: time.Now()}
	here := New(Config{Tokens: ts, Now: clk.now, CacheTTL: time.Hour})
	there := New(Config{Tokens: ts})
	a, _ := there.Create(ctx, "a", duct.RoleRead, "")
	b, _ := there.Create(ctx, "b", duct.RoleRead, "")
	changes, err := ts.Watch(ctx) // from now on: the creations are past
	if err != nil {
		t.Fatal(err)
	}
	followed := make(chan struct{})
	go func() {
		here.Follow(changes)
		close(followed)
	}()
	for _, nt := range []duct.NewToken{a, b} {
		if _, err := here.Authenticate(ctx, nt.Token); err != nil {
			t.Fatal(err)
		}
	}
	// Revoked behind the cache's back: without the watch, here would
	// trust b for an hour.
	if err := there.Revoke(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		_, err := here.Authenticate(ctx, b.Token)
		if errors.Is(err, duct.ErrUnauthorized) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked token still accepted after a second: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// a is served from the cache: it survives the store's record going
	// (deleted without a watch event reaching here, as when the watch is
	// down), until the TTL.
	cancel()
	<-followed
	rec, _ := ts.Get(t.Context(), a.ID)
	if err := ts.Delete(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := here.Authenticate(t.Context(), a.Token); err != nil {
		t.Errorf("cached token refused within its TTL: %v", err)
	}
	clk.add(time.Hour + time.Second)
	if _, err := here.Authenticate(t.Context(), a.Token); !errors.Is(err, duct.ErrUnauthorized) {
		t.Errorf("token %s accepted past its TTL once its record %+v is gone: %v", a.ID, rec, err)
	}
}

func TestAdminToken(t *testing.T) {
	ctx := t.Context()
	ts := openTokens(t)
	s := New(Config{Tokens: ts, AdminToken: "operator-secret"})
	p, err := s.Authenticate(ctx, "operator-secret")
	if err != nil || p.Role != duct.RoleAdmin || p.Name != AdminTokenName || p.TokenID != "" {
		t.Fatalf("admin token: %+v, %v", p, err)
	}
	if _, err := s.Authenticate(ctx, "operator-secreT"); !errors.Is(err, duct.ErrUnauthorized) {
		t.Errorf("near miss accepted: %v", err)
	}
	// With an operator's token, the first start creates none.
	if tok, err := s.Bootstrap(ctx); tok != "" || err != nil {
		t.Errorf("Bootstrap with an admin token = %q, %v", tok, err)
	}
	if some, _ := ts.Any(ctx); some {
		t.Error("a token was stored")
	}
}

func TestBootstrap(t *testing.T) {
	ctx := t.Context()
	ts := openTokens(t)
	s := New(Config{Tokens: ts})
	tok, err := s.Bootstrap(ctx)
	if err != nil || tok == "" {
		t.Fatalf("Bootstrap = %q, %v", tok, err)
	}
	p, err := s.Authenticate(ctx, tok)
	if err != nil || p.Role != duct.RoleAdmin {
		t.Fatalf("first token: %+v, %v", p, err)
	}
	// Once: the store holds a token now.
	if again, err := New(Config{Tokens: ts}).Bootstrap(ctx); again != "" || err != nil {
		t.Errorf("second Bootstrap = %q, %v", again, err)
	}
}
