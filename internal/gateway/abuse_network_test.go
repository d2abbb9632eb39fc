package gateway_test

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/duct-dev/duct/internal/ducttest"
)

// TestNetworkModes: network none reaches nothing beyond the sandbox's own
// loopback; outbound reaches services on the host.
func TestNetworkModes(t *testing.T) {
	s := ducttest.Start(t)
	sandboxed(t, s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello from the host\n"))
			c.Close()
		}
	}()
	probe := ducttest.Files{"main.py": fmt.Sprintf(`
import socket

def handler(request):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", %d))
        return s.recv(100).decode()
    except OSError as e:
        return "refused: " + str(e)
`, ln.Addr().(*net.TCPAddr).Port)}
	for _, tc := range []struct {
		network, want string
	}{{"none", "refused"}, {"outbound", "hello from the host"}} {
		fn := "net-" + tc.network
		s.Deploy(fn, probe, fmt.Sprintf(`{"network": %q}`, tc.network))
		r := s.Invoke(fn, "GET", "/", "")
		if r.Status != 200 || !strings.HasPrefix(r.Body, tc.want) {
			t.Errorf("network %s: %d %q, want %q", tc.network, r.Status, r.Body, tc.want)
		}
	}
}
