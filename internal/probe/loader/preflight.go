package loader

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/host/rawbtf"
)

// Capability numbers from linux/capability.h. CAP_BPF and CAP_PERFMON
// exist since 5.8; before that CAP_SYS_ADMIN is required.
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// ErrNotPermitted is wrapped by preflight errors about privileges.
var ErrNotPermitted = errors.New("not permitted")

// Preflight checks what loading needs before anything is loaded, so the
// user gets one clear sentence instead of a verifier log.
func Preflight() error {
	if err := checkCapabilities(); err != nil {
		return err
	}
	if mode := lockdownMode("/sys/kernel/security/lockdown"); mode == "confidentiality" {
		return fmt.Errorf("kernel lockdown is in %q mode, which forbids BPF programs from reading kernel memory; memtrace cannot run (boot with lockdown=integrity or none): %w", mode, ErrNotPermitted)
	}
	if _, err := os.Stat(rawbtf.KernelPath); err != nil {
		return fmt.Errorf("kernel BTF not found at %s: memtrace's CO-RE programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y (RHEL 8.2+, Debian 11+, Ubuntu 20.10+ have it)", rawbtf.KernelPath)
	}
	return nil
}

func checkCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	if has(capSysAdmin) || (has(capBPF) && has(capPerfmon)) {
		return nil
	}
	var missing []string
	if !has(capBPF) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(capPerfmon) {
		missing = append(missing, "CAP_PERFMON")
	}
	return fmt.Errorf("loading BPF programs needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN on kernels before 5.8); missing %s: run as root (sudo memtrace …): %w",
		strings.Join(missing, " and "), ErrNotPermitted)
}

// lockdownMode returns the active mode in the lockdown file, "" if none.
func lockdownMode(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	s := string(b)
	i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return ""
	}
	return s[i+1 : j]
}
