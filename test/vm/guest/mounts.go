package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

type mount struct {
	src, dir, fstype, data string
	optional               bool // a Debian host has it, the tests do not need it
}

// mounts are what systemd mounts on Debian 12, in order.
var mounts = []mount{
	{src: "proc", dir: "/proc", fstype: "proc"},
	{src: "sysfs", dir: "/sys", fstype: "sysfs"},
	{src: "devtmpfs", dir: "/dev", fstype: "devtmpfs", data: "mode=0755"},
	{src: "tmpfs", dir: "/dev/shm", fstype: "tmpfs", data: "mode=1777"},
	{src: "devpts", dir: "/dev/pts", fstype: "devpts", optional: true},
	{src: "tmpfs", dir: "/run", fstype: "tmpfs", data: "mode=0755"},
	{src: "tmpfs", dir: "/tmp", fstype: "tmpfs", data: "mode=1777"},
	// The loader reads the lockdown mode from securityfs.
	{src: "securityfs", dir: "/sys/kernel/security", fstype: "securityfs", optional: true},
	{src: "tracefs", dir: "/sys/kernel/tracing", fstype: "tracefs"},
	{src: "debugfs", dir: "/sys/kernel/debug", fstype: "debugfs", optional: true},
	{src: "bpf", dir: "/sys/fs/bpf", fstype: "bpf", data: "mode=0700", optional: true},
	{src: "hugetlbfs", dir: "/dev/hugepages", fstype: "hugetlbfs", optional: true},
}

func mountAll() error {
	for _, m := range mounts {
		if err := mountOne(m); err != nil && !m.optional {
			return err
		}
	}
	// The initramfs has no /dev/console, so the kernel started us without
	// standard streams: take the console now that devtmpfs is there.
	if con, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		for fd := 0; fd <= 2; fd++ {
			unix.Dup2(int(con.Fd()), fd)
		}
		con.Close()
	}
	// provoke and tracefs take their lock files here, as on Debian.
	if err := os.MkdirAll("/run/lock", 0o1777); err != nil {
		return fmt.Errorf("creating /run/lock: %w", err)
	}
	if err := unix.Sethostname([]byte("memtrace-vm")); err != nil {
		return fmt.Errorf("setting the hostname: %w", err)
	}
	return loopbackUp()
}

// loopbackUp brings lo up (the kernel then gives it 127.0.0.1), as any
// booted system has it: tests serve HTTP on the loopback address.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}

func mountOne(m mount) error {
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return fmt.Errorf("mounting %s: %w", m.dir, err)
	}
	flags := uintptr(unix.MS_NOSUID)
	if m.fstype != "devtmpfs" {
		flags |= unix.MS_NODEV
	}
	if err := unix.Mount(m.src, m.dir, m.fstype, flags, m.data); err != nil {
		return fmt.Errorf("mounting %s on %s: %w", m.fstype, m.dir, err)
	}
	return nil
}

// setupCgroups mounts the memory controller the tests need: "v1" as on
// this project's CI host (a v1 memory hierarchy, which provoke's pipe
// resize and warn_alloc methods need, beside an empty cgroup2 hierarchy),
// "v2" as on a default Debian 12 (one unified hierarchy with the memory
// controller enabled for child cgroups).
func setupCgroups(mode string) error {
	const root = "/sys/fs/cgroup"
	switch mode {
	case "", "v1":
		if err := mountOne(mount{src: "tmpfs", dir: root, fstype: "tmpfs", data: "mode=0755"}); err != nil {
			return err
		}
		if err := mountOne(mount{src: "cgroup", dir: filepath.Join(root, "memory"), fstype: "cgroup", data: "memory"}); err != nil {
			return err
		}
		return mountOne(mount{src: "cgroup2", dir: filepath.Join(root, "unified"), fstype: "cgroup2"})
	case "v2":
		if err := mountOne(mount{src: "cgroup2", dir: root, fstype: "cgroup2"}); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(root, "cgroup.subtree_control"), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("enabling the memory controller: %w", err)
		}
		_, err = f.WriteString("+memory")
		return errors.Join(err, f.Close())
	}
	return fmt.Errorf("unknown cgroup mode %q (want v1 or v2)", mode)
}
