package broker

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestEmbeddedPersistsAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Embedded() || b.ClientURL() != "" {
		t.Fatalf("embedded=%v url=%q: want embedded without a listening port", b.Embedded(), b.ClientURL())
	}
	kv, err := b.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	b.Close()

	b, err = Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kv, err = b.JS.KeyValue(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(e.Value()); got != "v1" {
		t.Fatalf("after restart got %q, want v1", got)
	}
}

func TestExternalServer(t *testing.T) {
	ctx := context.Background()
	// A second embedded server listening on loopback plays the external
	// cluster.
	ext, err := Open(ctx, Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	url := ext.ClientURL()
	if url == "" {
		t.Fatal("listening server has no client URL")
	}
	b, err := Open(ctx, Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Embedded() {
		t.Fatal("external broker claims to be embedded")
	}
	kv, err := b.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "k", "from-client"); err != nil {
		t.Fatal(err)
	}
	kv2, err := ext.JS.KeyValue(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv2.Get(ctx, "k")
	if err != nil || string(e.Value()) != "from-client" {
		t.Fatalf("server side read %v, %v", e, err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Config{}); err == nil {
		t.Fatal("no data dir and no URL: want an error")
	}
	if _, err := Open(ctx, Config{URL: "nats://user:secret@127.0.0.1:1"}); err == nil {
		t.Fatal("unreachable URL: want an error")
	} else if got := err.Error(); strings.Contains(got, "secret") {
		t.Fatalf("error leaks the password: %s", got)
	}
}
