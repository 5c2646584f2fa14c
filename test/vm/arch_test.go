package main

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestKernelArch(t *testing.T) {
	for pkg, want := range map[string]string{
		"linux-image-amd64": "amd64", "linux-image-6.1.0-57-amd64": "amd64",
		"linux-image-arm64": "arm64", "linux-image-6.1.0-57-arm64": "arm64",
		"linux-image-cloud-amd64": "amd64",
	} {
		if got := (kernelEntry{"bookworm", pkg}).arch(); got != want {
			t.Errorf("arch of %s = %s, want %s", pkg, got, want)
		}
	}
	es, err := parseKernels("bookworm:linux-image-amd64,bookworm:linux-image-arm64,bullseye:linux-image-amd64")
	if err != nil {
		t.Fatal(err)
	}
	if got := kernelArchs(es); !slices.Equal(got, []string{"amd64", "arm64"}) {
		t.Errorf("kernelArchs = %v", got)
	}
	// Another architecture than the host's never comes from the host's
	// apt, which has no lists for it.
	foreign := "arm64"
	if runtime.GOARCH == "arm64" {
		foreign = "amd64"
	}
	if _, err := parseKernels("linux-image-" + foreign); err == nil || !strings.Contains(err.Error(), "comes from a Debian suite") {
		t.Errorf("bare %s kernel accepted: %v", foreign, err)
	}
}

// An arm64 suite has its own apt state beside the amd64 one, and apt is
// told the architecture there, not through dpkg.
func TestSuiteAptArch(t *testing.T) {
	cache := t.TempDir()
	amd, err := suiteApt(cache, "bookworm", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	arm, err := suiteApt(cache, "bookworm", "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if amd.dir != filepath.Join(cache, "apt/bookworm") || arm.dir != filepath.Join(cache, "apt/bookworm_arm64") {
		t.Errorf("dirs %s, %s", amd.dir, arm.dir)
	}
	opts := strings.Join(arm.options(), " ")
	for _, want := range []string{
		"-o APT::Architecture=arm64", "-o APT::Architectures=arm64",
		"-o Dir::State::Lists=" + filepath.Join(cache, "apt/bookworm_arm64/lists"),
		"-o Dir::State::status=" + filepath.Join(cache, "apt/bookworm_arm64/status"),
	} {
		if !strings.Contains(opts, want) {
			t.Errorf("arm64 options lack %q: %s", want, opts)
		}
	}
	if o := strings.Join(amd.options(), " "); !strings.Contains(o, "-o APT::Architectures=amd64") {
		t.Errorf("amd64 options: %s", o)
	}
	if _, err := os.Stat(filepath.Join(arm.dir, "sources.list")); err != nil {
		t.Error(err)
	}
	if s := arm.String(); s != "bookworm arm64" {
		t.Errorf("String() = %q", s)
	}
}

// The arm64 guest: qemu-system-aarch64's virt machine, the console on the
// PL011 and the results on a PCI 16550 the plan names; always emulated
// on another architecture.
func TestMachineArgs(t *testing.T) {
	m, err := machineFor("arm64")
	if err != nil {
		t.Fatal(err)
	}
	c := vmConfig{machine: m, vmlinuz: "vmlinuz", initramfs: "initrd", memMiB: 2048, cpus: 1, accel: "tcg", console: "console.log"}
	args := strings.Join(c.args(), " ")
	for _, want := range []string{
		"-machine virt", "-cpu max,", "-accel tcg", "console=ttyAMA0 ",
		"-serial file:console.log", "-chardev stdio,id=results -device pci-serial,chardev=results",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("arm64 args lack %q: %s", want, args)
		}
	}
	if m.qemu != "qemu-system-aarch64" || m.qemuPkg != "qemu-system-arm" {
		t.Errorf("qemu %s from %s", m.qemu, m.qemuPkg)
	}
	if p := makePlan(options{cgroup: "v1"}, m); p.Results != "/dev/ttyS0" {
		t.Errorf("arm64 plan's results port %q", p.Results)
	}
	x, _ := machineFor("amd64")
	xargs := strings.Join(vmConfig{machine: x, accel: "tcg", console: "c"}.args(), " ")
	if !strings.Contains(xargs, "-serial file:c -serial stdio") || !strings.Contains(xargs, "console=ttyS0 ") || strings.Contains(xargs, "-machine") {
		t.Errorf("amd64 args: %s", xargs)
	}
	if p := makePlan(options{cgroup: "v1"}, x); p.Results != "/dev/ttyS1" {
		t.Errorf("amd64 plan's results port %q", p.Results)
	}
	if _, err := machineFor("riscv64"); err == nil {
		t.Error("riscv64 has a machine")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		if arch != runtime.GOARCH && chooseAccel("kvm", arch) != "tcg" {
			t.Errorf("%s kernel on %s not emulated", arch, runtime.GOARCH)
		}
	}
}
