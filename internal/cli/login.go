package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/duct-dev/duct"
)

// loginCmd is `duct login`.
type loginCmd struct{ token string }

func (c *loginCmd) info() cmdInfo {
	return cmdInfo{
		name:    "login",
		group:   "Access",
		summary: "Store an API token for a server",
		usage:   "[--token TOKEN] [flags]",
		help: `
Login checks a token against the server (GET /api/v1/whoami) and, if the
server accepts it, stores it for that server's URL in
$XDG_CONFIG_HOME/duct/credentials.json (else ~/.config/duct/credentials.json),
a file only you may read. Later commands send it to that server; DUCT_TOKEN,
when set, wins over it.

Without --token, login reads the token from stdin (it prompts when stdin is a
terminal), which keeps it out of your shell history.`,
		examples: `
duct login                                        # paste the token when asked
duct login --server https://fn.example.com --token "$TOKEN"
pass show duct/admin | duct login`,
	}
}

func (c *loginCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	fs.StringVar(&c.token, "token", "", "the `TOKEN` to store (default: read from stdin)")
}

func (c *loginCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 0, ""); err != nil {
		return err
	}
	tok := strings.TrimSpace(c.token)
	if tok == "" {
		var err error
		if tok, err = readSecretLine(e, "Token for "+e.server+": "); err != nil {
			return fmt.Errorf("login: %w", err)
		}
	}
	if tok == "" {
		return usageErrorf("no token given")
	}
	cl, err := e.clientWith(tok)
	if err != nil {
		return err
	}
	p, err := cl.Whoami(ctx)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	creds, path, err := e.loadCredentials()
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	creds.Servers[cl.BaseURL()] = credential{Token: tok, Name: p.Name, Role: p.Role, SavedAt: time.Now().UTC()}
	if err := saveCredentials(path, creds); err != nil {
		return fmt.Errorf("login: storing the token: %w", err)
	}
	fmt.Fprintf(e.stdout, "Logged in to %s as %s (role %s); token stored in %s\n", cl.BaseURL(), p.Name, p.Role, path)
	if e.getenv("DUCT_TOKEN") != "" {
		fmt.Fprintln(e.stderr, "duct: note: DUCT_TOKEN is set, and wins over the stored token")
	}
	return nil
}

// readSecretLine reads one line from stdin, prompting on stderr when
// stdin is a terminal.
func readSecretLine(e *env, prompt string) (string, error) {
	if isTerminal(e.stdin) {
		fmt.Fprint(e.stderr, prompt)
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// logoutCmd is `duct logout`.
type logoutCmd struct{}

func (c *logoutCmd) info() cmdInfo {
	return cmdInfo{
		name:    "logout",
		group:   "Access",
		summary: "Forget the API token stored for a server",
		help: `
Logout removes the token duct login stored for the server. The token stays
valid on the server: revoke it there with 'duct tokens rm ID'.`,
		examples: `
duct logout
duct logout --server https://fn.example.com`,
	}
}

func (c *logoutCmd) define(fs *flagSet, e *env) { serverFlag(fs, e) }

func (c *logoutCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 0, ""); err != nil {
		return err
	}
	key, err := serverKey(e.server)
	if err != nil {
		return err
	}
	creds, path, err := e.loadCredentials()
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if _, ok := creds.Servers[key]; !ok {
		fmt.Fprintf(e.stdout, "Not logged in to %s\n", key)
		return nil
	}
	delete(creds.Servers, key)
	if err := saveCredentials(path, creds); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	fmt.Fprintf(e.stdout, "Logged out of %s\n", key)
	return nil
}

// whoamiCmd is `duct whoami`.
type whoamiCmd struct{ json bool }

func (c *whoamiCmd) info() cmdInfo {
	return cmdInfo{
		name:    "whoami",
		group:   "Access",
		summary: "Show which token duct sends, and its role",
		help: `
Whoami asks the server which token duct sends it (DUCT_TOKEN, else the one
duct login stored): its name, id and role.`,
		examples: `
duct whoami
duct whoami --json | jq -r .role`,
	}
}

func (c *whoamiCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	jsonFlag(fs, &c.json)
}

func (c *whoamiCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 0, 0, ""); err != nil {
		return err
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	p, err := cl.Whoami(ctx)
	if err != nil {
		return fmt.Errorf("whoami: %w", err)
	}
	if c.json {
		return writeJSON(e.stdout, p)
	}
	id := p.TokenID
	if id == "" {
		id = "not stored"
	}
	fmt.Fprintf(e.stdout, "%s (role %s, token %s) at %s\n", p.Name, p.Role, id, cl.BaseURL())
	return nil
}

// roleList is the roles as flag help shows them.
func roleList() []string {
	out := make([]string, len(duct.Roles))
	for i, r := range duct.Roles {
		out[i] = string(r)
	}
	return out
}
