// Package auth issues and checks Duct's API tokens. A token reads
// duct_<id>_<secret>: the id (12 hex digits) names its record in the
// store, which holds its name, its role and the SHA-256 of the secret
// (32 random bytes, base64url), never the secret itself. Checks compare
// digests in constant time, trust a verified token for a few seconds
// without reading the store again, and forget a token as soon as the
// store's watch says it changed or was revoked, on any node.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/store"
)

// Token format.
const (
	prefix      = "duct_"
	idBytes     = 6 // 12 hex digits
	secretBytes = 32
)

// AdminTokenName is the principal name of the operator's
// DUCT_ADMIN_TOKEN.
const AdminTokenName = "DUCT_ADMIN_TOKEN"

// DefaultCacheTTL is how long a verified token is trusted without
// reading the store. Revocations reach the cache through the store's
// watch well before; the TTL bounds staleness if the watch breaks.
const DefaultCacheTTL = 5 * time.Second

// errInvalid is every refused token: the caller learns nothing about
// which part was wrong.
var errInvalid = fmt.Errorf("the bearer token is not valid (malformed, unknown or revoked): %w", duct.ErrUnauthorized)

// Config wires a Service.
type Config struct {
	Tokens *store.Tokens
	// AdminToken, when set (DUCT_ADMIN_TOKEN), is accepted as an admin
	// token. It is not stored: only its digest is kept, in memory.
	AdminToken string
	// CacheTTL bounds how long a verification is reused; default
	// DefaultCacheTTL.
	CacheTTL time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// Service issues, lists, revokes and checks tokens. It implements
// duct.Authenticator and is safe for concurrent use.
type Service struct {
	cfg       Config
	adminHash [sha256.Size]byte
	hasAdmin  bool

	mu    sync.RWMutex // guards cache and epoch
	cache map[string]verified
	// epoch counts forgets: a verification that raced one is not cached.
	epoch uint64
}

// verified is a token recently checked against the store.
type verified struct {
	hash  [sha256.Size]byte
	p     duct.Principal
	until time.Time
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, cache: map[string]verified{}}
	if cfg.AdminToken != "" {
		s.adminHash, s.hasAdmin = sha256.Sum256([]byte(cfg.AdminToken)), true
	}
	return s
}

// generate makes a new token's id, secret and full text.
func generate() (id, secret, token string) {
	var idb [idBytes]byte
	var sb [secretBytes]byte
	rand.Read(idb[:])
	rand.Read(sb[:])
	id = hex.EncodeToString(idb[:])
	secret = base64.RawURLEncoding.EncodeToString(sb[:])
	return id, secret, prefix + id + "_" + secret
}

// parse splits a token into id and secret. The secret's alphabet
// (base64url) holds '_' too, so the id is found by its length.
func parse(token string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok || len(rest) < 2*idBytes+2 || rest[2*idBytes] != '_' {
		return "", "", false
	}
	id, secret = rest[:2*idBytes], rest[2*idBytes+1:]
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", "", false
		}
	}
	return id, secret, true
}

// Authenticate returns the principal of token, or an error matching
// duct.ErrUnauthorized.
func (s *Service) Authenticate(ctx context.Context, token string) (duct.Principal, error) {
	if s.hasAdmin {
		h := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(h[:], s.adminHash[:]) == 1 {
			return duct.Principal{Name: AdminTokenName, Role: duct.RoleAdmin}, nil
		}
	}
	id, secret, ok := parse(token)
	if !ok {
		return duct.Principal{}, errInvalid
	}
	h := sha256.Sum256([]byte(secret))
	now := s.cfg.Now()
	s.mu.RLock()
	v, hit := s.cache[id]
	epoch := s.epoch
	s.mu.RUnlock()
	if hit && now.Before(v.until) {
		if subtle.ConstantTimeCompare(h[:], v.hash[:]) == 1 {
			return v.p, nil
		}
		return duct.Principal{}, errInvalid
	}
	rec, err := s.cfg.Tokens.Get(ctx, id)
	if errors.Is(err, duct.ErrNotFound) {
		return duct.Principal{}, errInvalid
	}
	if err != nil {
		return duct.Principal{}, fmt.Errorf("check token: %w", err)
	}
	want, err := hex.DecodeString(rec.SHA256)
	if err != nil || len(want) != sha256.Size || !rec.Role.Valid() {
		s.cfg.Logger.Error("stored token record is damaged", "id", id)
		return duct.Principal{}, errInvalid
	}
	if subtle.ConstantTimeCompare(h[:], want) != 1 {
		return duct.Principal{}, errInvalid
	}
	p := duct.Principal{TokenID: rec.ID, Name: rec.Name, Role: rec.Role}
	s.mu.Lock()
	if s.epoch == epoch {
		s.cache[id] = verified{hash: h, p: p, until: now.Add(s.cfg.CacheTTL)}
	}
	s.mu.Unlock()
	return p, nil
}

// Create issues a token. The answer is the only place its text appears.
// by says who asked, for the record.
func (s *Service) Create(ctx context.Context, name string, role duct.Role, by string) (duct.NewToken, error) {
	if err := duct.ValidateTokenName(name); err != nil {
		return duct.NewToken{}, err
	}
	if err := duct.ValidateRole(role); err != nil {
		return duct.NewToken{}, err
	}
	for range 3 {
		id, secret, token := generate()
		sum := sha256.Sum256([]byte(secret))
		rec := store.TokenRecord{ID: id, Name: name, Role: role, SHA256: hex.EncodeToString(sum[:]),
			CreatedAt: s.cfg.Now().UTC(), CreatedBy: by}
		err := s.cfg.Tokens.Create(ctx, rec)
		if errors.Is(err, duct.ErrConflict) {
			continue // an id drawn twice: draw again
		}
		if err != nil {
			return duct.NewToken{}, err
		}
		return duct.NewToken{TokenInfo: rec.Info(), Token: token}, nil
	}
	return duct.NewToken{}, fmt.Errorf("create token: no free id after 3 draws: %w", duct.ErrConflict)
}

// List describes every stored token, oldest first.
func (s *Service) List(ctx context.Context) ([]duct.TokenInfo, error) {
	recs, err := s.cfg.Tokens.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]duct.TokenInfo, len(recs))
	for i, r := range recs {
		out[i] = r.Info()
	}
	return out, nil
}

// Revoke deletes the token with id; this node refuses it at once, others
// as soon as their watch sees the change.
func (s *Service) Revoke(ctx context.Context, id string) error {
	err := s.cfg.Tokens.Delete(ctx, id)
	s.Forget(id)
	return err
}

// Forget drops any cached verification of the token with id.
func (s *Service) Forget(id string) {
	s.mu.Lock()
	delete(s.cache, id)
	s.epoch++
	s.mu.Unlock()
}

// Follow forgets every token named on changes (the store's watch) until
// the channel closes.
func (s *Service) Follow(changes <-chan string) {
	for id := range changes {
		s.Forget(id)
	}
}

// Bootstrap issues the first admin token when the store holds none and
// no AdminToken is configured, so that a new server can be administered
// at all. It returns the token, which the caller shows once, or "" when
// none was needed.
func (s *Service) Bootstrap(ctx context.Context) (string, error) {
	if s.hasAdmin {
		return "", nil
	}
	some, err := s.cfg.Tokens.Any(ctx)
	if err != nil || some {
		return "", err
	}
	nt, err := s.Create(ctx, "admin", duct.RoleAdmin, "first start")
	if err != nil {
		return "", fmt.Errorf("first admin token: %w", err)
	}
	return nt.Token, nil
}

// CreatedBy describes p for a token record's CreatedBy.
func CreatedBy(p duct.Principal) string {
	if p.TokenID == "" {
		return p.Name
	}
	return p.Name + " (" + p.TokenID + ")"
}
