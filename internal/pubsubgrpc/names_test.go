package pubsubgrpc

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duct-dev/duct"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		full, kind, project, name string
		ok                        bool
	}{
		{"projects/p/topics/t", topics, "p", "t", true},
		{"projects/my-proj/subscriptions/s.1", subscriptions, "my-proj", "s.1", true},
		{"projects/p/topics/t", subscriptions, "", "", false},
		{"projects/p/topics/", topics, "", "", false},
		{"projects//topics/t", topics, "", "", false},
		{"projects/p/topics/a/b", topics, "", "", false},
		{"topics/t", topics, "", "", false},
		{"t", topics, "", "", false},
		{"", topics, "", "", false},
	}
	for _, tt := range tests {
		project, name, err := parseName(tt.full, tt.kind)
		if tt.ok != (err == nil) || project != tt.project || name != tt.name {
			t.Errorf("parseName(%q, %s) = %q, %q, %v", tt.full, tt.kind, project, name, err)
		}
		if err != nil && status.Code(err) != codes.InvalidArgument {
			t.Errorf("parseName(%q): code %s, want InvalidArgument", tt.full, status.Code(err))
		}
	}
}

func TestPage(t *testing.T) {
	names := []string{"d", "a", "c", "b", "e"}
	tests := []struct {
		size      int32
		token     string
		got, next string
	}{
		{0, "", "[a b c d e]", ""},
		{2, "", "[a b]", "b"},
		{2, "b", "[c d]", "d"},
		{2, "d", "[e]", ""},
		{5, "", "[a b c d e]", ""},
		{2, "bb", "[c d]", "d"}, // a token whose name is gone meanwhile
		{2, "z", "[]", ""},
	}
	for _, tt := range tests {
		got, next, err := page(append([]string(nil), names...), tt.size, tt.token)
		if err != nil || fmt.Sprint(got) != tt.got || next != tt.next {
			t.Errorf("page(%d, %q) = %v, %q, %v; want %s, %q", tt.size, tt.token, got, next, err, tt.got, tt.next)
		}
	}
	if _, _, err := page(names, -1, ""); status.Code(err) != codes.InvalidArgument {
		t.Errorf("page size -1: %v", err)
	}
}

func TestCode(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("topic %q: %w", "x", duct.ErrNotFound), codes.NotFound},
		{fmt.Errorf("topic %q: %w", "x", duct.ErrConflict), codes.AlreadyExists},
		{duct.Invalid("filter", "bad"), codes.InvalidArgument},
		{fmt.Errorf("message 0 is too big: %w", duct.ErrTooLarge), codes.InvalidArgument},
		{fmt.Errorf("closing: %w", duct.ErrShuttingDown), codes.Unavailable},
		{fmt.Errorf("x: %w", duct.ErrOverloaded), codes.ResourceExhausted},
		{status.Error(codes.Unimplemented, "no"), codes.Unimplemented},
		{fmt.Errorf("disk on fire"), codes.Internal},
	}
	for _, tt := range tests {
		if got := code(tt.err); got != tt.want {
			t.Errorf("code(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}
