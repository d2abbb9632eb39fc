package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/duct-dev/duct/internal/api"
)

// TestTopics runs duct topics create, ls, publish and rm against a
// server, with bad input along the way.
func TestTopics(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	if r := ok(t, server, "topics", "ls"); r.stdout != "" || !strings.Contains(r.stderr, "No topics yet") {
		t.Errorf("ls of none: %+v", r)
	}
	if r := ok(t, server, "topics", "create", "uploads", "--label", "team=media", "--retention", "48h"); r.stdout != "uploads: created\n" {
		t.Errorf("create: %q", r.stdout)
	}
	r := ok(t, server, "topics", "create", "events", "--json")
	var created api.Topic
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || created.Name != "events" || created.CreatedAt.IsZero() {
		t.Errorf("create --json: %q %v", r.stdout, err)
	}
	ok(t, server, "subs", "create", "thumbs", "--topic", "uploads")

	r = ok(t, server, "topics", "ls")
	if !regexp.MustCompile(`(?m)^NAME\s+SUBSCRIPTIONS\s+RETENTION\s+LABELS\s+CREATED$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^uploads\s+1\s+2d\s+team=media\s+\d+s$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^events\s+0\s+7d\s+`).MatchString(r.stdout) {
		t.Errorf("ls:\n%s", r.stdout)
	}
	var listed []api.Topic
	if err := json.Unmarshal([]byte(ok(t, server, "topics", "ls", "--json").stdout), &listed); err != nil || len(listed) != 2 {
		t.Errorf("ls --json: %v %+v", err, listed)
	}

	// Publish from an argument, a file and stdin; each prints the id.
	r = ok(t, server, "topics", "publish", "uploads", "hello", "--attr", "kind=text", "--ordering-key", "k1")
	if !regexp.MustCompile(`^\S+\n$`).MatchString(r.stdout) {
		t.Errorf("publish: %q", r.stdout)
	}
	file := filepath.Join(t.TempDir(), "photo.bin")
	if err := os.WriteFile(file, []byte{0xff, 0xd8, 0xff, 0x00}, 0o644); err != nil {
		t.Fatal(err)
	}
	ok(t, server, "topics", "publish", "uploads", "--data", "@"+file, "--attr", "kind=image")
	in := runEnv(t, map[string]string{"DUCT_TOKEN": testToken, "DUCT_SERVER": server}, "from stdin", "topics", "publish", "uploads", "-d", "-", "--json")
	var pr api.PublishResponse
	if in.code != 0 || json.Unmarshal([]byte(in.stdout), &pr) != nil || len(pr.MessageIDs) != 1 {
		t.Errorf("publish --data - --json: %+v", in)
	}
	r = ok(t, server, "subs", "pull", "thumbs", "--max", "10", "--json")
	var pulled api.PullResponse
	if err := json.Unmarshal([]byte(r.stdout), &pulled); err != nil || len(pulled.ReceivedMessages) != 3 {
		t.Fatalf("pull: %v\n%s", err, r.stdout)
	}
	m := pulled.ReceivedMessages
	if string(m[0].Message.Data) != "hello" || m[0].Message.Attributes["kind"] != "text" || m[0].Message.OrderingKey != "k1" ||
		string(m[1].Message.Data) != "\xff\xd8\xff\x00" || string(m[2].Message.Data) != "from stdin" {
		t.Errorf("pulled %+v", m)
	}

	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"topics"}, 2, "missing subcommand"},
		{[]string{"topics", "make"}, 2, `unknown subcommand "make"`},
		{[]string{"topics", "create"}, 2, "missing topic NAME"},
		{[]string{"topics", "create", "a", "b"}, 2, `unexpected argument "b"`},
		{[]string{"topics", "create", "x1", "--label", "nokey"}, 2, "want KEY=VALUE"},
		{[]string{"topics", "create", "x1", "--retention", "soon"}, 2, "want a duration"},
		{[]string{"topics", "ls", "--retention", "1h"}, 2, "--label and --retention apply to topics create"},
		{[]string{"topics", "create", "x1", "--attr", "a=b"}, 2, "apply to topics publish"},
		{[]string{"topics", "publish", "uploads"}, 2, "nothing to publish"},
		{[]string{"topics", "publish", "uploads", "m", "--data", "n"}, 2, "not both"},
		{[]string{"topics", "rm"}, 2, "missing topic NAME"},
		{[]string{"topics", "create", "uploads"}, 1, "uploads"},
		{[]string{"topics", "create", "9lives"}, 1, "must start with a letter"},
		{[]string{"topics", "publish", "nowhere", "x"}, 1, "nowhere"},
		{[]string{"topics", "publish", "uploads", "--data", "@/no/such/file"}, 1, "no such file"},
	} {
		r := run(t, server, bad.args...)
		if r.code != bad.code || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("duct %s: exit %d, stderr %q; want %d and %q", strings.Join(bad.args, " "), r.code, r.stderr, bad.code, bad.want)
		}
	}

	if r := ok(t, server, "topics", "rm", "uploads", "events"); r.stdout != "uploads: deleted\nevents: deleted\n" {
		t.Errorf("rm: %q", r.stdout)
	}
	r = run(t, server, "topics", "rm", "uploads")
	if r.code != 1 || !strings.Contains(r.stderr, "topics rm uploads") {
		t.Errorf("rm again: %+v", r)
	}
	r = run(t, server, "topics", "rm", "events", "nope2")
	if r.code != 1 || strings.Count(r.stderr, "duct: topics rm") != 2 {
		t.Errorf("rm of two missing: %+v", r)
	}
}

// TestPubSubServerFlags: the Pub/Sub flags of duct server are checked
// before anything starts.
func TestPubSubServerFlags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "--pubsub-auth"}, "pubsub-auth applies to the Pub/Sub port"},
		{[]string{"server", "--pubsub-addr", "nowhere"}, `pubsub-addr "nowhere"`},
	} {
		r := runEnv(t, nil, "", tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("duct %s: exit %d, stderr %q; want 2 and %q", strings.Join(tt.args, " "), r.code, r.stderr, tt.want)
		}
	}
}
