package duct

import (
	"errors"
	"strings"
	"testing"
)

// TestRoleAllows is the role table of the access control: what each role
// may do, spelled out rather than derived.
func TestRoleAllows(t *testing.T) {
	may := map[Role]string{
		RoleAdmin:  "identify read deploy invoke list-secrets admin",
		RoleDeploy: "identify read deploy invoke list-secrets",
		RoleInvoke: "identify invoke",
		RoleRead:   "identify read",
		"":         "",
		"root":     "",
	}
	all := []Permission{PermIdentify, PermRead, PermDeploy, PermInvoke, PermListSecrets, PermAdmin}
	for role, list := range may {
		for _, p := range all {
			want := strings.Contains(" "+list+" ", " "+string(p)+" ")
			if got := role.Allows(p); got != want {
				t.Errorf("Role(%q).Allows(%s) = %v, want %v", role, p, got, want)
			}
		}
	}
}

func TestSecretNames(t *testing.T) {
	for _, ok := range []string{"A", "_x", "SLACK_SIGNING_SECRET", "db2", strings.Repeat("a", 128)} {
		if err := ValidateSecretName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "2FA", "a-b", "a.b", "a/b", "../x", "PORT", "PATH", "HOME", "DUCT_X", "é", strings.Repeat("a", 129)} {
		if err := ValidateSecretName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
	for _, bad := range [][]byte{nil, {}, []byte("a\x00b"), make([]byte, MaxSecretValue+1)} {
		if err := ValidateSecretValue(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("value of %d bytes accepted", len(bad))
		}
	}
	if err := ValidateSecretValue([]byte(strings.Repeat("v", MaxSecretValue))); err != nil {
		t.Errorf("32 KiB refused: %v", err)
	}
}

// A function's secrets are valid names, listed once, and not also env
// variables (the secret would silently win, or lose).
func TestFunctionSecrets(t *testing.T) {
	base := Function{Name: "f", Runtime: RuntimeNode}.WithDefaults()
	cases := []struct {
		secrets []string
		env     map[string]string
		want    string
	}{
		{[]string{"A", "B"}, nil, ""},
		{[]string{"A", "A"}, nil, "listed twice"},
		{[]string{"A"}, map[string]string{"A": "x"}, "also set in env"},
		{[]string{"DUCT_TOKEN"}, nil, "reserved"},
		{[]string{"not-ok"}, nil, "not a valid secret name"},
	}
	for _, c := range cases {
		f := base
		f.Secrets, f.Env = c.secrets, c.env
		err := f.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("secrets %v env %v: %v, want %q", c.secrets, c.env, err, c.want)
		}
	}
}

func TestTokenNames(t *testing.T) {
	for _, ok := range []string{"ci", "deploy bot", "alice@example.com", "a.b-c_d:1"} {
		if err := ValidateTokenName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " x", "x ", "-x", "a\nb", strings.Repeat("a", 65), "a\x00"} {
		if err := ValidateTokenName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
