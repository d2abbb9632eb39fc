package duct

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Role is what an API token may do. Every token has exactly one.
type Role string

const (
	// RoleAdmin may do everything, including managing tokens and
	// secret values.
	RoleAdmin Role = "admin"
	// RoleDeploy may deploy, roll back and remove functions, manage
	// topics and subscriptions, read everything a RoleRead token reads,
	// list secret names, invoke functions, publish and pull messages.
	RoleDeploy Role = "deploy"
	// RoleInvoke may only invoke functions whose invoke mode is token,
	// publish messages and pull them.
	RoleInvoke Role = "invoke"
	// RoleRead may list and describe functions, their versions and logs,
	// topics, subscriptions and the server's status.
	RoleRead Role = "read"
)

// Roles lists the roles, most powerful first.
var Roles = []Role{RoleAdmin, RoleDeploy, RoleInvoke, RoleRead}

// Permission is one kind of request a role may or may not make.
type Permission string

const (
	// PermIdentify: say which token this is (whoami). Every role has it.
	PermIdentify Permission = "identify"
	// PermRead: list and describe functions, versions, logs, topics,
	// subscriptions and status.
	PermRead Permission = "read"
	// PermDeploy: deploy, roll back and remove functions; create and
	// delete topics and subscriptions.
	PermDeploy Permission = "deploy"
	// PermInvoke: invoke a function whose invoke mode is token; publish,
	// pull, acknowledge and seek messages.
	PermInvoke Permission = "invoke"
	// PermListSecrets: list secret names (never their values).
	PermListSecrets Permission = "list-secrets"
	// PermAdmin: manage tokens and set or remove secrets.
	PermAdmin Permission = "admin"
)

// grants is what each role may do beyond PermIdentify.
var grants = map[Role][]Permission{
	RoleDeploy: {PermRead, PermDeploy, PermInvoke, PermListSecrets},
	RoleInvoke: {PermInvoke},
	RoleRead:   {PermRead},
}

// Allows reports whether r may make requests needing p. An unknown role
// may do nothing.
func (r Role) Allows(p Permission) bool {
	switch {
	case r == RoleAdmin:
		return true
	case !r.Valid():
		return false
	case p == PermIdentify:
		return true
	}
	for _, g := range grants[r] {
		if g == p {
			return true
		}
	}
	return false
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	for _, k := range Roles {
		if r == k {
			return true
		}
	}
	return false
}

// ValidateRole checks that r names a role.
func ValidateRole(r Role) error {
	if !r.Valid() {
		return Invalid("role", "%q: want admin, deploy, invoke or read", r)
	}
	return nil
}

// Principal is who a request acts as: the token it presented.
type Principal struct {
	// TokenID is the token's id; empty for the operator's
	// DUCT_ADMIN_TOKEN, which is not stored.
	TokenID string `json:"id,omitempty"`
	Name    string `json:"name"`
	Role    Role   `json:"role"`
}

// Authenticator checks bearer tokens. Authenticate returns the token's
// principal, or an error matching ErrUnauthorized for a token that is
// malformed, unknown or revoked; any other error means the check itself
// failed (the store is unreachable, say).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// TokenInfo describes an API token. Its secret part is shown once, when
// the token is created, and never stored: only its SHA-256 is.
type TokenInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"createdAt"`
	// CreatedBy names the token that created this one ("DUCT_ADMIN_TOKEN"
	// or a token's name and id), or "first start".
	CreatedBy string `json:"createdBy,omitempty"`
}

// NewToken is a token just created: the only time Token is shown.
type NewToken struct {
	TokenInfo
	Token string `json:"token"`
}

// SecretInfo describes a stored secret. The API never shows a value.
type SecretInfo struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// UsedBy lists the functions whose serving version references the
	// secret, when the server says.
	UsedBy []string `json:"usedBy,omitempty"`
}

// MaxSecretValue bounds a secret's value, as for an env value.
const MaxSecretValue = 32 << 10

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,63}$`)

// ValidateTokenName checks a token's name: 1-64 letters, digits, spaces
// and . _ @ : -, starting with a letter or digit. Names are labels for
// people; they need not be unique.
func ValidateTokenName(name string) error {
	if !tokenNameRE.MatchString(name) || strings.HasSuffix(name, " ") {
		return Invalid("name", "%q: use 1-64 letters, digits, spaces and . _ @ : -, starting with a letter or digit", name)
	}
	return nil
}

// ValidateSecretName checks a secret's name. A secret reaches a function
// as an environment variable of the same name, so the name follows the
// rules of env: [A-Za-z_][A-Za-z0-9_]*, up to 128, not PORT, PATH, HOME
// or DUCT_*.
func ValidateSecretName(name string) error {
	if why := secretNameProblem(name); why != "" {
		if !envKeyRE.MatchString(name) {
			why += ": use letters, digits and _, not starting with a digit, up to 128"
		}
		return Invalid("secret name", "%s", why)
	}
	return nil
}

func secretNameProblem(name string) string {
	if !envKeyRE.MatchString(name) {
		return strconv.Quote(name) + " is not a valid secret name"
	}
	if reservedEnv[name] || strings.HasPrefix(name, "DUCT_") {
		return strconv.Quote(name) + " is reserved for the platform"
	}
	return ""
}

// ValidateSecretValue checks a secret's value: at most MaxSecretValue
// bytes and no NUL (it becomes an environment variable). The error never
// quotes the value.
func ValidateSecretValue(v []byte) error {
	switch {
	case len(v) == 0:
		return Invalid("value", "is empty")
	case len(v) > MaxSecretValue:
		return Invalid("value", "is %d bytes: the limit is %d (32 KiB)", len(v), MaxSecretValue)
	case strings.ContainsRune(string(v), 0):
		return Invalid("value", "holds a NUL byte")
	}
	return nil
}
