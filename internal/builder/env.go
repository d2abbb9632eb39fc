package builder

import (
	"os"
	"path/filepath"
	"strings"
)

// hostEnv keeps the host variables build tools need to reach their
// registries (proxies, certificates, registry settings) and nothing else.
func hostEnv(extraPath ...string) []string {
	keep := []string{"HOME", "LANG", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
		"SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "PIP_INDEX_URL",
		"PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE",
		"GONOPROXY", "GOINSECURE", "GOPATH"}
	var env []string
	path := strings.Join(append(extraPath, "/usr/local/bin", "/usr/bin", "/bin"), string(os.PathListSeparator))
	env = append(env, "PATH="+path)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "npm_config_") || strings.HasPrefix(k, "NPM_CONFIG_") {
			env = append(env, kv)
			continue
		}
		for _, x := range keep {
			if k == x {
				env = append(env, kv)
				break
			}
		}
	}
	return env
}

func binDir(tool string) string { return filepath.Dir(tool) }
