package sandbox

import (
	"errors"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// deniedSyscalls are what functions never need and attackers like: they
// fail with EPERM. The list favours compatibility over minimalism: a deny
// list lets every language runtime work unchanged while closing the
// kernel interfaces container escapes and host snooping go through.
var deniedSyscalls = []uintptr{
	// Mounts and root changes.
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT,
	unix.SYS_OPEN_TREE, unix.SYS_MOVE_MOUNT, unix.SYS_FSOPEN, unix.SYS_FSCONFIG,
	unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOUNT_SETATTR,
	// New namespaces and joining others.
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	// Kernel modules, kexec, reboot, swap, accounting.
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_REBOOT,
	unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_ACCT, unix.SYS_QUOTACTL,
	// Other processes' memory and tracing.
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV, unix.SYS_KCMP,
	// Keyrings, BPF, perf, userfaultfd, io_uring.
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY, unix.SYS_BPF,
	unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
	// File handles that bypass path checks; fanotify.
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT, unix.SYS_FANOTIFY_INIT,
	// Clocks, host identity, kernel log.
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
	unix.SYS_SETHOSTNAME, unix.SYS_SETDOMAINNAME, unix.SYS_SYSLOG, unix.SYS_VHANGUP,
}

// namespaceFlags are clone flags that create namespaces.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// auditArch is the AUDIT_ARCH of this build; 0 means no filter support.
var auditArch = map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[runtime.GOARCH]

// seccompFilter builds the BPF program.
func seccompFilter() ([]unix.SockFilter, error) {
	if auditArch == 0 {
		return nil, errors.New("seccomp: no filter for " + runtime.GOARCH)
	}
	const (
		ld   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
		// offsets in struct seccomp_data
		offNr   = 0
		offArch = 4
		offArg0 = 16
	)
	errno := func(e syscall.Errno) unix.SockFilter {
		return unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(e)}
	}
	allow := unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ALLOW}
	var p []unix.SockFilter
	// A foreign architecture's syscall numbers mean something else:
	// kill rather than guess.
	p = append(p,
		unix.SockFilter{Code: ld, K: offArch},
		unix.SockFilter{Code: jeq, K: auditArch, Jt: 1},
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_KILL_PROCESS},
		unix.SockFilter{Code: ld, K: offNr},
	)
	if runtime.GOARCH == "amd64" {
		// The x32 ABI numbers its syscalls from 0x40000000.
		p = append(p, unix.SockFilter{Code: jge, K: 0x40000000, Jt: 0, Jf: 1}, errno(unix.EPERM))
	}
	for _, nr := range deniedSyscalls {
		p = append(p, unix.SockFilter{Code: jeq, K: uint32(nr), Jf: 1}, errno(unix.EPERM))
	}
	// clone3 passes its flags in memory a filter cannot read: say it does
	// not exist, and C libraries fall back to clone, whose flags it can.
	p = append(p, unix.SockFilter{Code: jeq, K: unix.SYS_CLONE3, Jf: 1}, errno(unix.ENOSYS))
	p = append(p,
		unix.SockFilter{Code: jeq, K: unix.SYS_CLONE, Jf: 3},
		unix.SockFilter{Code: ld, K: offArg0},
		unix.SockFilter{Code: jset, K: namespaceFlags, Jf: 1},
		errno(unix.EPERM),
		allow,
	)
	return p, nil
}

// restrictThread makes the calling OS thread, and every process it
// starts, unable to gain privileges and subject to the seccomp filter, and
// drops every capability from its bounding set. The caller must hold the
// thread (runtime.LockOSThread) and never release it.
func restrictThread() error {
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	filter, err := seccompFilter()
	if err != nil {
		return err
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog))); e != 0 {
		return e
	}
	return nil
}
