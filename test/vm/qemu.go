package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// machine is how qemu runs one architecture's kernels: the binary (and
// the Debian package that has it), the kernel's console, and where the
// guest writes its results.
type machine struct {
	arch, qemu, qemuPkg string
	console             string   // the kernel console's device (console=)
	results             string   // the guest's results port (proto.Plan.Results)
	args                []string // machine model and serial ports, after -serial file:CONSOLE
}

var machines = map[string]machine{
	// The PC's two 16550s: ttyS0 the console, ttyS1 the results.
	"amd64": {arch: "amd64", qemu: "qemu-system-x86_64", qemuPkg: "qemu-system-x86",
		console: "ttyS0", results: "/dev/ttyS1", args: []string{"-serial", "stdio"}},
	// virt has one UART (PL011, the console) before qemu 9; the results
	// go to a 16550 on PCI, ttyS0 (Debian's arm64 kernel has 8250_PCI
	// built in; virtio-console is a module the guest does not load).
	// -cpu max with the implementation-defined pointer authentication:
	// the architected QARMA algorithm makes TCG several times slower.
	"arm64": {arch: "arm64", qemu: "qemu-system-aarch64", qemuPkg: "qemu-system-arm",
		console: "ttyAMA0", results: "/dev/ttyS0", args: []string{
			"-machine", "virt", "-cpu", "max,pauth-impdef=on",
			"-chardev", "stdio,id=results", "-device", "pci-serial,chardev=results",
		}},
}

// machineFor returns the machine of an architecture, or an error naming
// the supported ones.
func machineFor(arch string) (machine, error) {
	m, ok := machines[arch]
	if !ok {
		return machine{}, fmt.Errorf("no qemu machine for %s kernels (amd64, arm64)", arch)
	}
	return m, nil
}

// vmConfig is one boot.
type vmConfig struct {
	machine            machine
	vmlinuz, initramfs string
	memMiB, cpus       int
	accel              string // "kvm" or "tcg"
	console            string // file for the kernel console (ttyS0)
	timeout            time.Duration
	cmdline            string   // appended to the kernel command line
	extra              []string // more qemu arguments (the lab's network device)
}

// chooseAccel uses KVM only when a hardware KVM module is loaded: the
// /dev/kvm of a machine without one (a software hypervisor) exists but is
// too slow to boot a stock kernel, slower than plain TCG emulation. A
// kernel of another architecture than the host's is always emulated.
func chooseAccel(want, arch string) string {
	if arch != runtime.GOARCH {
		return "tcg"
	}
	if want != "auto" {
		return want
	}
	for _, m := range []string{"kvm_intel", "kvm_amd"} {
		if _, err := os.Stat("/sys/module/" + m); err == nil {
			if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
				f.Close()
				return "kvm"
			}
		}
	}
	return "tcg"
}

func (c vmConfig) args() []string {
	append_ := "console=" + c.machine.console + " rdinit=/init panic=-1 loglevel=4 " + c.cmdline
	a := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
		// Power-off and panic (panic=-1 reboots at once) both end qemu.
		"-no-reboot",
		"-accel", c.accel,
		"-m", strconv.Itoa(c.memMiB), "-smp", strconv.Itoa(c.cpus),
		"-kernel", c.vmlinuz, "-initrd", c.initramfs, "-append", append_,
		// The kernel console to a file; the results port (machine.args) to stdout.
		"-serial", "file:" + c.console,
	}
	a = append(a, c.machine.args...)
	a = append(a, c.extra...)
	if c.accel == "kvm" {
		a = append(a, "-cpu", "host")
	}
	return a
}

// boot runs the VM to the end of its plan and returns what it reported.
// qemu is killed at the timeout, on Ctrl-C, and if this process dies
// (Pdeathsig): no qemu is ever left running.
func boot(ctx context.Context, c vmConfig, echo io.Writer) (*proto.Stream, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.machine.qemu, c.args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Stdin = nil
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, fmt.Errorf("starting qemu: %w", err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("starting qemu: %w", err)
	}
	stream, rerr := proto.Read(stdout, echo)
	werr := cmd.Wait()
	took := time.Since(start)
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return stream, took, fmt.Errorf("the VM did not finish within %s: qemu killed (console: %s)", c.timeout, c.console)
	case ctx.Err() != nil:
		return stream, took, fmt.Errorf("interrupted: qemu killed")
	case rerr != nil:
		return stream, took, rerr
	case werr != nil:
		return stream, took, fmt.Errorf("qemu: %w (console: %s)", werr, c.console)
	case !stream.Done:
		return stream, took, fmt.Errorf("the guest stopped before the end of its plan (console: %s)", filepath.Clean(c.console))
	}
	return stream, took, nil
}
