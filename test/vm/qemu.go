package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// vmConfig is one boot.
type vmConfig struct {
	vmlinuz, initramfs string
	memMiB, cpus       int
	accel              string // "kvm" or "tcg"
	console            string // file for the kernel console (ttyS0)
	timeout            time.Duration
	cmdline            string // appended to the kernel command line
}

// chooseAccel uses KVM only when a hardware KVM module is loaded: the
// /dev/kvm of a machine without one (a software hypervisor) exists but is
// too slow to boot a stock kernel, slower than plain TCG emulation.
func chooseAccel(want string) string {
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
	append_ := "console=ttyS0 rdinit=/init panic=-1 loglevel=4 " + c.cmdline
	a := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
		// Power-off and panic (panic=-1 reboots at once) both end qemu.
		"-no-reboot",
		"-accel", c.accel,
		"-m", strconv.Itoa(c.memMiB), "-smp", strconv.Itoa(c.cpus),
		"-kernel", c.vmlinuz, "-initrd", c.initramfs, "-append", append_,
		// ttyS0: the kernel console, to a file; ttyS1: the results.
		"-serial", "file:" + c.console, "-serial", "stdio",
	}
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
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", c.args()...)
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
