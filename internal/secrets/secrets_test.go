package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
	"github.com/duct-dev/duct/internal/store"
	"github.com/nats-io/nats.go/jetstream"
)

// open returns Secrets on a fresh broker, and the broker for raw reads.
func open(t *testing.T) (*Secrets, *store.Secrets, *broker.Broker) {
	t.Helper()
	b, err := broker.Open(t.Context(), broker.Config{DataDir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	st, err := store.OpenSecrets(t.Context(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadKey(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(st, key)
	if err != nil {
		t.Fatal(err)
	}
	return s, st, b
}

const plaintext = "xoxb-very-secret-value-4242"

// TestEncryptedAtRest reads what the store holds for a secret, straight
// from JetStream: neither the value nor its base64 appears.
func TestEncryptedAtRest(t *testing.T) {
	ctx := t.Context()
	s, _, b := open(t)
	if _, created, err := s.Set(ctx, "SLACK_TOKEN", []byte(plaintext)); err != nil || !created {
		t.Fatalf("Set = %v, %v", created, err)
	}
	kv, err := b.JS.KeyValue(ctx, "duct-secrets")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "SLACK_TOKEN")
	if err != nil {
		t.Fatal(err)
	}
	raw := e.Value()
	for _, leak := range []string{plaintext, base64.StdEncoding.EncodeToString([]byte(plaintext)), "very-secret"} {
		if bytes.Contains(raw, []byte(leak)) {
			t.Fatalf("the stored record holds %q:\n%s", leak, raw)
		}
	}
	if !bytes.Contains(raw, []byte("SLACK_TOKEN")) {
		t.Fatalf("the raw read is not the secret's record: %s", raw)
	}
	vals, missing, err := s.Values(ctx, []string{"SLACK_TOKEN", "NOPE"})
	if err != nil || string(vals["SLACK_TOKEN"]) != plaintext || len(missing) != 1 || missing[0] != "NOPE" {
		t.Fatalf("Values = %q %v %v", vals, missing, err)
	}

	// A new value replaces the old one in the stream too (history 1),
	// sealed under a fresh nonce.
	before := append([]byte(nil), raw...)
	if _, created, err := s.Set(ctx, "SLACK_TOKEN", []byte(plaintext)); err != nil || created {
		t.Fatalf("second Set = %v, %v", created, err)
	}
	e, _ = kv.Get(ctx, "SLACK_TOKEN")
	if bytes.Equal(e.Value(), before) {
		t.Error("the same value sealed twice gives the same bytes: nonces are reused")
	}
	hist, err := kv.History(ctx, "SLACK_TOKEN")
	if err != nil || len(hist) != 1 {
		t.Errorf("history holds %d entries (%v), want 1", len(hist), err)
	}
	if err := s.Delete(ctx, "SLACK_TOKEN"); err != nil {
		t.Fatal(err)
	}
	// Purged: what remains is a marker, not the sealed value.
	hist, err = kv.History(ctx, "SLACK_TOKEN")
	for _, h := range hist {
		if h.Operation() == jetstream.KeyValuePut || len(h.Value()) > 0 {
			t.Errorf("after delete, the stream still holds %v %q", h.Operation(), h.Value())
		}
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Error(err)
	}
}

// A sealed value is bound to its name and to the key.
func TestSealBinding(t *testing.T) {
	ctx := t.Context()
	s, st, _ := open(t)
	s.Set(ctx, "A", []byte("value of a"))
	rec, _ := st.Get(ctx, "A")
	// Moved under another name, it does not open.
	st.Put(ctx, "B", rec.Sealed)
	if _, _, err := s.Values(ctx, []string{"B"}); err == nil || !strings.Contains(err.Error(), "cannot decrypt") {
		t.Errorf("a value moved to another name opened: %v", err)
	}
	if strings.Contains(errorText(s.Values(ctx, []string{"B"})), "value of a") {
		t.Error("the error holds the value")
	}
	// Another key opens nothing; Verify says so.
	other, _ := New(st, bytes.Repeat([]byte{7}, KeySize))
	if _, _, err := other.Values(ctx, []string{"A"}); err == nil {
		t.Error("another key opened the value")
	}
	if _, err := other.Verify(ctx); err == nil {
		t.Error("Verify with the wrong key passed")
	}
	// With the right key, only the moved value is reported.
	if bad, err := s.Verify(ctx); err != nil || len(bad) != 1 || bad[0] != "B" {
		t.Errorf("Verify = %v, %v", bad, err)
	}
}

func errorText(_ map[string][]byte, _ []string, err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCheckSecrets(t *testing.T) {
	ctx := t.Context()
	s, _, _ := open(t)
	s.Set(ctx, "HAVE", []byte("x"))
	if err := s.CheckSecrets(ctx, []string{"HAVE"}); err != nil {
		t.Fatal(err)
	}
	err := s.CheckSecrets(ctx, []string{"ZED", "HAVE", "ALPHA"})
	if !errors.Is(err, duct.ErrInvalid) || !strings.Contains(err.Error(), "no secrets named ALPHA, ZED") {
		t.Errorf("CheckSecrets = %v", err)
	}
	for _, bad := range []struct{ name, value string }{{"bad-name", "x"}, {"PORT", "x"}, {"OK", ""}, {"OK", "a\x00"}} {
		if _, _, err := s.Set(ctx, bad.name, []byte(bad.value)); !errors.Is(err, duct.ErrInvalid) {
			t.Errorf("Set(%q, %q) = %v", bad.name, bad.value, err)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadKey(dir, nil)
	if err != nil || len(k1) != KeySize {
		t.Fatalf("LoadKey = %d bytes, %v", len(k1), err)
	}
	path := filepath.Join(dir, KeyFile)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode(), err)
	}
	k2, err := LoadKey(dir, nil)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second LoadKey differs (%v)", err)
	}
	// Too open: refused, saying how to fix it.
	for _, mode := range []os.FileMode{0o640, 0o604, 0o666} {
		os.Chmod(path, mode)
		if _, err := LoadKey(dir, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	os.Chmod(path, 0o400)
	if _, err := LoadKey(dir, nil); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
	// A supplied key wins and writes nothing.
	other := t.TempDir()
	supplied := bytes.Repeat([]byte{1}, KeySize)
	if k, err := LoadKey(other, supplied); err != nil || !bytes.Equal(k, supplied) {
		t.Errorf("supplied key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, KeyFile)); !os.IsNotExist(err) {
		t.Error("a key file was written although the key was supplied")
	}
	if _, err := LoadKey(other, []byte("short")); err == nil {
		t.Error("a short supplied key was accepted")
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb}, KeySize)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := ParseKey(" " + enc.EncodeToString(raw) + "\n"); err != nil || !bytes.Equal(k, raw) {
			t.Errorf("ParseKey: %v", err)
		}
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(raw[:16])} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted it", bad)
		}
	}
}
