package sandbox

import (
	"fmt"
	"os"
	"strings"
)

// Features says what the host offers the sandbox.
type Features struct {
	Root       bool   `json:"root"`       // Duct runs as uid 0
	UserNS     bool   `json:"userns"`     // user namespaces can be created
	Cgroups    int    `json:"cgroups"`    // 1 or 2 for the hierarchy Duct uses; 0 if neither works
	CgroupNote string `json:"cgroupNote"` // why not, when Cgroups is 0
	Seccomp    bool   `json:"seccomp"`    // the kernel filters syscalls
	Arch       bool   `json:"arch"`       // Duct has a seccomp filter for this CPU
}

// Missing lists, in words, what the host lacks for a sandbox.
func (f Features) Missing() []string {
	var m []string
	if !f.Root {
		m = append(m, "Duct is not running as root (it needs to create cgroups and map user ids)")
	}
	if !f.UserNS {
		m = append(m, "user namespaces are disabled (sysctl user.max_user_namespaces or kernel.unprivileged_userns_clone)")
	}
	if f.Cgroups == 0 {
		m = append(m, "no usable cgroup memory and pids controllers: "+f.CgroupNote)
	}
	if !f.Seccomp {
		m = append(m, "the kernel has no seccomp filter support")
	}
	if !f.Arch {
		m = append(m, "no seccomp filter for this CPU architecture")
	}
	return m
}

// Probe looks at the host.
func Probe() Features {
	f := Features{Root: os.Geteuid() == 0, Arch: auditArch != 0}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) != "0" {
		f.UserNS = true
	}
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" && !f.Root {
		f.UserNS = false
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil && strings.Contains(string(b), "Seccomp:") {
		f.Seccomp = true
	}
	if f.Root {
		r, err := newCgroupRoot("duct-probe-"+randomHex(3), false)
		if err != nil {
			f.CgroupNote = err.Error()
		} else {
			f.Cgroups = r.version
			r.remove()
		}
	} else {
		f.CgroupNote = "not root"
	}
	return f
}

// UnavailableError says the host cannot sandbox, and why.
type UnavailableError struct{ Features Features }

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("sandbox unavailable: %s", strings.Join(e.Features.Missing(), "; "))
}
