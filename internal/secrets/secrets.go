// Package secrets keeps the values functions are given as secrets:
// encrypted with AES-256-GCM under the server's key before they reach the
// store, decrypted only to hand them to a function's instances. It also
// owns that key: 32 random bytes in the data directory (mode 0600), or
// supplied by the operator.
package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/store"
)

// KeySize is the length of the secret key: AES-256.
const KeySize = 32

// sealVersion prefixes every sealed value, so that another scheme can be
// told apart later.
const sealVersion byte = 1

// Secrets sets, lists and reveals secrets. It is safe for concurrent use.
type Secrets struct {
	store *store.Secrets
	aead  cipher.AEAD
}

// New returns Secrets sealing with key (KeySize bytes) into st.
func New(st *store.Secrets, key []byte) (*Secrets, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key: %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Secrets{store: st, aead: aead}, nil
}

// seal encrypts value with a fresh random nonce, binding it to name: a
// sealed value moved under another name does not open.
func (s *Secrets) seal(name string, value []byte) []byte {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(value)+s.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:]) // never fails (crypto/rand)
	return s.aead.Seal(out, out[1:], value, []byte(name))
}

// errKey explains a value that does not open: the usual cause is a key
// other than the one that sealed it.
var errKey = errors.New("cannot decrypt: it was sealed with another secret key " +
	"(servers sharing a NATS must share DUCT_SECRET_KEY), or the stored value is damaged")

func (s *Secrets) open(name string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("secret %q: %w", name, errKey)
	}
	v, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(name))
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, errKey)
	}
	return v, nil
}

// Set stores value as the secret name, replacing any value it had.
// created reports whether the secret is new.
func (s *Secrets) Set(ctx context.Context, name string, value []byte) (info duct.SecretInfo, created bool, err error) {
	if err := duct.ValidateSecretName(name); err != nil {
		return info, false, err
	}
	if err := duct.ValidateSecretValue(value); err != nil {
		return info, false, fmt.Errorf("secret %q: %w", name, err)
	}
	rec, created, err := s.store.Put(ctx, name, s.seal(name, value))
	if err != nil {
		return info, false, err
	}
	return rec.Info(), created, nil
}

// List describes every secret, by name, without values.
func (s *Secrets) List(ctx context.Context) ([]duct.SecretInfo, error) {
	recs, err := s.store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]duct.SecretInfo, len(recs))
	for i, r := range recs {
		out[i] = r.Info()
	}
	return out, nil
}

// Info describes the secret name, without its value: duct.ErrNotFound
// when there is none.
func (s *Secrets) Info(ctx context.Context, name string) (duct.SecretInfo, error) {
	rec, err := s.store.Get(ctx, name)
	if err != nil {
		return duct.SecretInfo{}, err
	}
	return rec.Info(), nil
}

// Delete removes the secret name: duct.ErrNotFound when there is none.
func (s *Secrets) Delete(ctx context.Context, name string) error {
	if err := duct.ValidateSecretName(name); err != nil {
		return err
	}
	return s.store.Delete(ctx, name)
}

// Values decrypts the named secrets for a function's instances. Names
// with no secret are returned in missing, not as an error: the caller
// decides whether that refuses a deploy or only warrants a warning.
func (s *Secrets) Values(ctx context.Context, names []string) (values map[string][]byte, missing []string, err error) {
	values = make(map[string][]byte, len(names))
	for _, n := range names {
		rec, err := s.store.Get(ctx, n)
		if errors.Is(err, duct.ErrNotFound) {
			missing = append(missing, n)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		v, err := s.open(n, rec.Sealed)
		if err != nil {
			return nil, nil, err
		}
		values[n] = v
	}
	return values, missing, nil
}

// CheckSecrets fails, matching duct.ErrInvalid, when any of names is not
// a stored secret; the error names them all.
func (s *Secrets) CheckSecrets(ctx context.Context, names []string) error {
	var missing []string
	for _, n := range names {
		if _, err := s.store.Get(ctx, n); errors.Is(err, duct.ErrNotFound) {
			missing = append(missing, n)
		} else if err != nil {
			return err
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	word := "secret"
	if len(missing) > 1 {
		word = "secrets"
	}
	return duct.Invalid("secrets", "no %s named %s: set it first (duct secrets set NAME)", word, strings.Join(missing, ", "))
}

// Verify checks that the key opens the stored secrets, so that a server
// started with the wrong key says so at once rather than when a function
// starts. When none opens, the key is wrong: that is the error. When only
// some do not, they are damaged (or were sealed by a server with another
// key): they are listed in unopened, and can be set again.
func (s *Secrets) Verify(ctx context.Context) (unopened []string, err error) {
	recs, err := s.store.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if _, err := s.open(r.Name, r.Sealed); err != nil {
			unopened = append(unopened, r.Name)
		}
	}
	if len(recs) > 0 && len(unopened) == len(recs) {
		return nil, fmt.Errorf("the secret key opens none of the %d stored secrets: it is not the key that sealed them", len(recs))
	}
	return unopened, nil
}
