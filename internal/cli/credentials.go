package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/client"
)

// credentials are the tokens duct login stored, by server URL, in
// $XDG_CONFIG_HOME/duct/credentials.json (else ~/.config/duct/…), a file
// only its owner may read.
type credentials struct {
	Servers map[string]credential `json:"servers"`
}

type credential struct {
	Token   string    `json:"token"`
	Name    string    `json:"name,omitempty"`
	Role    duct.Role `json:"role,omitempty"`
	SavedAt time.Time `json:"savedAt"`
}

// credentialsPath is where credentials live, or "" when neither
// XDG_CONFIG_HOME nor HOME says.
func (e *env) credentialsPath() string {
	if d := e.getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "duct", "credentials.json")
	}
	if h := e.getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "duct", "credentials.json")
	}
	return ""
}

// loadCredentials reads the stored credentials; a missing file is none.
func (e *env) loadCredentials() (credentials, string, error) {
	c := credentials{Servers: map[string]credential{}}
	path := e.credentialsPath()
	if path == "" {
		return c, "", errors.New("no config directory: set HOME or XDG_CONFIG_HOME")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, path, nil
	}
	if err != nil {
		return c, path, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, path, fmt.Errorf("%s: %w", path, err)
	}
	if c.Servers == nil {
		c.Servers = map[string]credential{}
	}
	return c, path, nil
}

// saveCredentials writes c to path, replacing the file in one rename so
// that no reader sees half of it, with mode 0600 in a 0700 directory.
func saveCredentials(path string, c credentials) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".credentials-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, there is nothing to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// serverKey is the form of a server URL credentials are stored under.
func serverKey(server string) (string, error) {
	c, err := client.New(server, "")
	if err != nil {
		return "", usageErrorf("--server: %v", err)
	}
	return c.BaseURL(), nil
}

// storedToken is the token duct login stored for the server, or "". A
// file it cannot read is reported once on stderr, not fatal: the call
// then goes without a token.
func (e *env) storedToken() string {
	if e.credentialsPath() == "" {
		return ""
	}
	key, err := serverKey(e.server)
	if err != nil {
		return ""
	}
	c, path, err := e.loadCredentials()
	if err != nil {
		fmt.Fprintf(e.stderr, "duct: ignoring stored credentials: %v\n", err)
		return ""
	}
	cred, ok := c.Servers[key]
	if !ok {
		return ""
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(e.stderr, "duct: %s is readable by others (mode %04o): chmod 600 it\n", path, st.Mode().Perm())
	}
	return cred.Token
}

// token is the bearer token API calls send: DUCT_TOKEN, else the one duct
// login stored for the server.
func (e *env) token() string {
	if t := e.getenv("DUCT_TOKEN"); t != "" {
		return t
	}
	return e.storedToken()
}
