package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/duct-dev/duct/internal/api"
)

// TestTriggersCommand adds and removes triggers; each change is a new
// version with the same artifact.
func TestTriggersCommand(t *testing.T) {
	t.Parallel()
	server := startServer(t, "")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"svc/main.py": "def handler(request):\n    return request.path\n"})
	ok(t, server, "deploy", filepath.Join(dir, "svc"))

	if r := ok(t, server, "triggers", "ls", "svc"); r.stdout != "" || !strings.Contains(r.stderr, "no triggers") {
		t.Fatalf("ls with none: %q %q", r.stdout, r.stderr)
	}
	if r := ok(t, server, "triggers", "add", "svc", "--schedule", "0 7 * * MON-FRI", "--timezone", "Europe/Paris"); !strings.Contains(r.stdout, "1 trigger; version 2 serves") {
		t.Fatalf("add schedule: %q", r.stdout)
	}
	ok(t, server, "triggers", "add", "svc", "--http", "/hooks/svc", "--methods", "post,put")
	if code, body := get(t, server+"/hooks/svc"); code != 405 {
		t.Fatalf("GET /hooks/svc: %d %s", code, body)
	}
	r := ok(t, server, "triggers", "ls", "svc")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], `schedule "0 7 * * MON-FRI" in Europe/Paris`) || !strings.Contains(lines[1], "next ") ||
		!strings.Contains(lines[2], "http POST,PUT /hooks/svc") || !strings.Contains(lines[2], server+"/hooks/svc") {
		t.Fatalf("ls:\n%s", r.stdout)
	}
	var ft api.FunctionTriggers
	mustJSON(t, ok(t, server, "triggers", "ls", "svc", "--json").stdout, &ft)
	if ft.Version != 3 || len(ft.Triggers) != 2 || ft.Triggers[0].ID == "" {
		t.Fatalf("ls --json: %+v", ft)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "svc", "--schedule", "0 7 * * MON-FRI", "--timezone", "Europe/Paris"}, "has this trigger already"},
		{[]string{"add", "svc", "--schedule", "99 * * * *"}, "above maximum"},
		{[]string{"add", "svc", "--http", "/api/x"}, "Duct's own"},
		{[]string{"add", "svc"}, "exactly one of"},
		{[]string{"add", "svc", "--schedule", "@hourly", "--topic", "t"}, "exactly one of"},
		{[]string{"add", "svc", "--topic", "things", "--timezone", "UTC"}, "--timezone goes with --schedule"},
		{[]string{"ls", "svc", "--schedule", "@hourly"}, "applies to triggers add"},
		{[]string{"rm", "svc", "7"}, "no trigger \"7\""},
	} {
		if r := run(t, server, append([]string{"triggers"}, tt.args...)...); r.code == 0 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("triggers %v: exit %d %q, want an error about %q", tt.args, r.code, r.stderr, tt.want)
		}
	}

	ok(t, server, "triggers", "rm", "svc", ft.Triggers[0].ID)
	if r := ok(t, server, "triggers", "rm", "svc", "0"); !strings.Contains(r.stdout, "0 triggers; version 5 serves") {
		t.Fatalf("rm by index: %q", r.stdout)
	}
	if code, _ := get(t, server+"/hooks/svc"); code != 404 {
		t.Fatalf("GET /hooks/svc after rm: %d", code)
	}
	if r := ok(t, server, "versions", "svc"); strings.Count(r.stdout, "\n") != 6 {
		t.Fatalf("versions:\n%s", r.stdout)
	}
}
