package api_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/daemon"
	"github.com/duct-dev/duct/internal/ducttest"
)

// showSecret reports what an instance got of the secret API_KEY: the
// variable, the file and the file's mode.
var showSecret = ducttest.Files{"main.py": `import json, os

INSTANCE = os.urandom(8).hex()

def handler(request):
    out = {"env": os.environ.get("API_KEY"), "instance": INSTANCE}
    try:
        with open("/run/secrets/API_KEY") as f:
            out["file"] = f.read()
        out["mode"] = oct(os.stat("/run/secrets/API_KEY").st_mode & 0o777)
    except OSError as e:
        out["fileError"] = str(e)
    return json.dumps(out)
`}

type seen struct {
	Env, File, Mode, FileError, Instance string
}

func see(t *testing.T, s *ducttest.Server) seen {
	t.Helper()
	r := s.Invoke("uses", "GET", "/", "")
	var got seen
	if r.Status != 200 || json.Unmarshal([]byte(r.Body), &got) != nil {
		t.Fatalf("invoke uses: %d %s", r.Status, r.Body)
	}
	return got
}

func putSecret(s *ducttest.Server, name, value string) ducttest.Response {
	b, _ := json.Marshal(map[string]string{"value": value})
	return s.Do("PUT", "/api/v1/secrets/"+name, bytes.NewReader(b))
}

// TestSecrets follows a secret from its creation to its deletion: a deploy
// that references it before it exists is refused; a function gets it as a
// variable and a file (mode 0400); a new value reaches new instances; a
// delete is refused while the function uses it, unless forced. The value
// never shows in an answer, in the server's log, or in the store's files.
func TestSecrets(t *testing.T) {
	var log syncBuffer
	s := ducttest.Start(t, func(c *daemon.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const v1, v2 = "first-Value-7f3a91", "second-Value-c04e2b"
	var answers []string
	keep := func(r ducttest.Response) ducttest.Response { answers = append(answers, r.Body); return r }

	r := s.DeployRaw("uses", ducttest.Archive(t, showSecret), "secrets: [API_KEY, OTHER_KEY]\n")
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Problem["detail"].(string), "no secrets named API_KEY, OTHER_KEY") {
		t.Fatalf("deploy before the secrets exist: %d %v", r.Status, r.Problem)
	}
	if r := keep(putSecret(s, "API_KEY", v1)); r.Status != http.StatusCreated {
		t.Fatalf("set: %d %s", r.Status, r.Body)
	}
	s.Deploy("uses", showSecret, "secrets: [API_KEY]\n")
	got := see(t, s)
	if got.Env != v1 {
		t.Errorf("the instance's API_KEY is %q, want %q", got.Env, v1)
	}
	if !s.Sandboxed() {
		t.Log("this host runs functions unsandboxed: /run/secrets is not checked")
	} else {
		if got.File != v1 || got.Mode != "0o400" {
			t.Errorf("/run/secrets/API_KEY holds %q with mode %s (%s), want %q and 0o400", got.File, got.Mode, got.FileError, v1)
		}
	}

	// A new value: the next request is served by a new instance that has it.
	r2 := keep(putSecret(s, "API_KEY", v2))
	var info duct.SecretInfo
	if json.Unmarshal([]byte(r2.Body), &info); r2.Status != http.StatusOK || len(info.UsedBy) != 1 || info.UsedBy[0] != "uses" {
		t.Fatalf("second set: %d %s", r2.Status, r2.Body)
	}
	if got2 := see(t, s); got2.Env != v2 || got2.Instance == got.Instance || s.Sandboxed() && got2.File != v2 {
		t.Errorf("after the change: %+v (before %+v)", got2, got)
	}

	var list []duct.SecretInfo
	lr := keep(s.Get("/api/v1/secrets"))
	if json.Unmarshal([]byte(lr.Body), &list); len(list) != 1 || list[0].Name != "API_KEY" || list[0].UsedBy[0] != "uses" ||
		!list[0].UpdatedAt.After(list[0].CreatedAt) {
		t.Errorf("list: %s", lr.Body)
	}

	// Refused while used; forced, the function runs on without it.
	dr := keep(s.Do("DELETE", "/api/v1/secrets/API_KEY", nil))
	if dr.Status != http.StatusConflict || !strings.Contains(dr.Body, "used by function uses") || !strings.Contains(dr.Body, "force=true") {
		t.Errorf("delete while used: %d %s", dr.Status, dr.Body)
	}
	if r := s.Do("DELETE", "/api/v1/secrets/API_KEY?force=true", nil); r.Status != http.StatusNoContent {
		t.Fatalf("forced delete: %d %s", r.Status, r.Body)
	}
	if got3 := see(t, s); got3.Env != "" || got3.File != "" {
		t.Errorf("after the forced delete the instance still has %+v", got3)
	}
	if r := s.Do("DELETE", "/api/v1/secrets/API_KEY", nil); r.Status != http.StatusNotFound {
		t.Errorf("deleting twice: %d", r.Status)
	}

	// Bad input is refused without echoing it.
	for _, c := range []struct{ name, body, want string }{
		{"bad-name", `{"value": "x"}`, "not a valid secret name"},
		{"DUCT_X", `{"value": "x"}`, "reserved"},
		{"OK", `{"value": ""}`, "empty"},
		{"OK", `{"value": "` + strings.Repeat("s", 33<<10) + `"}`, "32 KiB"},
		{"OK", `{"value": "leaky` + "\x01" + `"}`, "JSON object"},
		{"OK", `{"valeu": "leaky"}`, "JSON object"},
		{"OK", `{"value": "leaky"} {}`, "JSON object"},
		{"OK", `{}`, "missing"},
	} {
		r := s.Do("PUT", "/api/v1/secrets/"+c.name, strings.NewReader(c.body))
		if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, c.want) || strings.Contains(r.Body, "leaky") {
			t.Errorf("PUT %s %.40q: %d %s, want 400 saying %q", c.name, c.body, r.Status, r.Body, c.want)
		}
	}

	for _, a := range answers {
		if strings.Contains(a, v1) || strings.Contains(a, v2) {
			t.Errorf("an answer holds the value: %s", a)
		}
	}
	if l := log.String(); strings.Contains(l, v1) || strings.Contains(l, v2) {
		t.Errorf("the server's log holds the value")
	}
	// At rest: the broker's files hold the secret's name, never its value.
	var name, value bool
	filepath.WalkDir(filepath.Join(s.Config.DataDir, "jetstream"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		name = name || bytes.Contains(b, []byte("API_KEY"))
		value = value || bytes.Contains(b, []byte(v1)) || bytes.Contains(b, []byte(v2))
		return nil
	})
	if !name || value {
		t.Errorf("the broker's files: the name found %v (want true), a value found %v (want false)", name, value)
	}
}
