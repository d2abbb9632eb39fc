package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/broker"
)

func open(t *testing.T) *Store {
	t.Helper()
	b, err := broker.Open(context.Background(), broker.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	s, err := Open(context.Background(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVersionsAndRollback(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Function(ctx, "hello"); !errors.Is(err, duct.ErrNotFound) {
		t.Fatalf("missing function: got %v, want ErrNotFound", err)
	}
	for i := 1; i <= 3; i++ {
		v, err := s.AddVersion(ctx, duct.Version{Function: "hello", ArtifactDigest: fmt.Sprint("a", i)})
		if err != nil {
			t.Fatal(err)
		}
		if v.Number != i {
			t.Fatalf("version %d numbered %d", i, v.Number)
		}
	}
	st, v, err := s.ActiveVersion(ctx, "hello")
	if err != nil || st.Active != 3 || v.ArtifactDigest != "a3" || st.Latest != 3 {
		t.Fatalf("active: %+v %+v %v", st, v, err)
	}
	if _, err := s.Activate(ctx, "hello", 1); err != nil {
		t.Fatal(err)
	}
	if _, v, _ := s.ActiveVersion(ctx, "hello"); v.Number != 1 {
		t.Fatalf("after rollback active is %d", v.Number)
	}
	if _, err := s.Activate(ctx, "hello", 9); !errors.Is(err, duct.ErrNotFound) {
		t.Fatalf("rollback to a missing version: %v", err)
	}
	vs, err := s.Versions(ctx, "hello")
	if err != nil || len(vs) != 3 {
		t.Fatalf("versions: %d %v", len(vs), err)
	}
	if err := s.DeleteFunction(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Function(ctx, "hello"); !errors.Is(err, duct.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if vs, _ := s.Versions(ctx, "hello"); len(vs) != 0 {
		t.Fatalf("versions survive delete: %d", len(vs))
	}
	// A deleted name can be deployed again from version 1.
	v, err = s.AddVersion(ctx, duct.Version{Function: "hello"})
	if err != nil || v.Number != 1 {
		t.Fatalf("redeploy after delete: %d %v", v.Number, err)
	}
}

// Concurrent deploys must each get their own version; none is lost.
func TestConcurrentAddVersion(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	const n = 16
	var wg sync.WaitGroup
	nums := make(chan int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.AddVersion(ctx, duct.Version{Function: "race", BuildKey: fmt.Sprint(i)})
			if err != nil {
				t.Error(err)
				return
			}
			nums <- v.Number
		}()
	}
	wg.Wait()
	close(nums)
	seen := map[int]bool{}
	for k := range nums {
		if seen[k] {
			t.Fatalf("version %d handed out twice", k)
		}
		seen[k] = true
	}
	vs, _ := s.Versions(ctx, "race")
	if len(seen) != n || len(vs) != n {
		t.Fatalf("got %d numbers and %d versions, want %d", len(seen), len(vs), n)
	}
	st, _ := s.Function(ctx, "race")
	if st.Latest != n || !seen[st.Active] {
		t.Fatalf("state %+v", st)
	}
}

func TestBlobs(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	data := bytes.Repeat([]byte("duct"), 300_000) // spans many chunks
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if ok, err := s.HasBlob(ctx, d); ok || err != nil {
		t.Fatalf("has before put: %v %v", ok, err)
	}
	if err := s.PutBlob(ctx, d, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, d, bytes.NewReader(nil)); err != nil { // already there: no rewrite
		t.Fatal(err)
	}
	r, err := s.OpenBlob(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	for _, bad := range []string{"", "md5:abc", "sha256:XYZ", "sha256:../../etc"} {
		if _, err := s.OpenBlob(ctx, bad); !errors.Is(err, duct.ErrInvalid) {
			t.Errorf("digest %q: got %v, want ErrInvalid", bad, err)
		}
	}
	missing := "sha256:" + hex.EncodeToString(make([]byte, 32))
	if _, err := s.OpenBlob(ctx, missing); !errors.Is(err, duct.ErrNotFound) {
		t.Fatalf("missing blob: %v", err)
	}
	if err := s.PutBuild(ctx, d, BuildRecord{ArtifactDigest: d, Log: "ok"}); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.Build(ctx, d); err != nil || rec.ArtifactDigest != d {
		t.Fatalf("build record: %+v %v", rec, err)
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := open(t)
	if _, err := s.AddVersion(ctx, duct.Version{Function: "before"}); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func() *FunctionEvent {
		select {
		case ev := <-ch:
			return ev
		case <-ctx.Done():
			t.Fatal("watch: no event")
			return nil
		}
	}
	if ev := next(); ev == nil || ev.Name != "before" || ev.State.Active != 1 {
		t.Fatalf("initial: %+v", ev)
	}
	if ev := next(); ev != nil {
		t.Fatalf("want end-of-initial marker, got %+v", ev)
	}
	if _, err := s.AddVersion(ctx, duct.Version{Function: "after"}); err != nil {
		t.Fatal(err)
	}
	// Reservation then activation: two updates; the last has Active set.
	for ev := next(); ev.State.Active != 1; ev = next() {
	}
	if err := s.DeleteFunction(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	if ev := next(); !ev.Deleted || ev.Name != "after" {
		t.Fatalf("delete: %+v", ev)
	}
}
