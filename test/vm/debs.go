package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// The packages come from a Debian suite's or the machine's apt sources
// (apt.go), by name, and are kept in the cache directory: a run with a
// warm cache downloads nothing. They are unpacked with dpkg-deb, never
// installed: the host kernel is not touched.

// resolveKernel turns a package name into the concrete kernel image
// package: the metapackage linux-image-amd64 (linux-image-arm64) depends
// on the newest kernel of the suite's security updates
// (linux-image-6.1.0-N-amd64 in bookworm).
func resolveKernel(a *aptSource, name string) (string, error) {
	if !strings.HasSuffix(name, "-"+a.arch) || regexp.MustCompile(`^linux-image-\d`).MatchString(name) {
		return name, nil
	}
	out, err := a.output("apt-cache", "depends", name)
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^\s*Depends: (linux-image-\d\S*)$`).FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("resolving %s: no linux-image dependency in apt-cache depends:\n%s", name, out)
	}
	return m[1], nil
}

// fetchDeb returns the cached .deb of pkg, downloading it with apt-get
// download when the cache has not this version yet. Stale package lists
// (a version the mirror no longer has) are refreshed once; when apt
// cannot be reached at all, a cached .deb of the package is used. The
// .debs of every source share one directory: their file names hold the
// version.
func fetchDeb(cache string, a *aptSource, pkg string) (string, error) {
	dir := filepath.Join(cache, "debs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the package cache (-cache or $MEMTRACE_VM_CACHE): %w", err)
	}
	path, err := download(a, dir, pkg)
	if err != nil && !a.updated {
		fmt.Fprintf(os.Stderr, "vm: %v; apt-get update and retrying\n", err)
		if uerr := a.update(); uerr == nil {
			path, err = download(a, dir, pkg)
		} else {
			err = fmt.Errorf("%v; %v", err, uerr)
		}
	}
	if err != nil {
		if m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*_"+a.arch+".deb")); len(m) > 0 {
			fmt.Fprintf(os.Stderr, "vm: %v; using the cached %s\n", err, filepath.Base(m[len(m)-1]))
			return m[len(m)-1], nil
		}
	}
	return path, err
}

func download(a *aptSource, dir, pkg string) (string, error) {
	// --print-uris names the file of the candidate version, offline.
	out, err := a.output("apt-get", "download", "--print-uris", pkg)
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	if len(f) < 2 || !strings.HasSuffix(f[1], ".deb") {
		return "", fmt.Errorf("downloading %s: unexpected apt-get --print-uris output %q", pkg, out)
	}
	path := filepath.Join(dir, f[1])
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Fprintf(os.Stderr, "vm: downloading %s (%s)\n", f[1], a)
	cmd := a.command("apt-get", "download", "-q", pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("downloading %s: %v: %s", pkg, err, strings.TrimSpace(string(b)))
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("downloading %s: %s not there after apt-get download", pkg, f[1])
	}
	return path, nil
}

// unpack extracts the given members of a .deb (tar patterns such as
// "./boot/*") into dir once; a marker file records a complete extraction.
func unpack(deb, dir string, members ...string) error {
	done := filepath.Join(dir, ".unpacked")
	if _, err := os.Stat(done); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("unpacking %s: %w", deb, err)
	}
	// dpkg-deb -x would also write 400 MB of modules the guest does not
	// load; the data tarball piped through tar takes only what is asked.
	script := `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "${@:3}"`
	cmd := exec.Command("bash", append([]string{"-c", "set -o pipefail; " + script, "unpack", deb, dir}, members...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("unpacking %s: %v: %s", filepath.Base(deb), err, b)
	}
	return os.WriteFile(done, nil, 0o644)
}

// kernelFiles fetches and unpacks the kernel package and returns the
// path of its vmlinuz, the release it boots ("6.1.0-56-amd64") and the
// .deb.
func kernelFiles(cache string, a *aptSource, pkg string) (vmlinuz, release, deb string, err error) {
	deb, err = fetchDeb(cache, a, pkg)
	if err != nil {
		return "", "", "", err
	}
	dir := filepath.Join(cache, "unpacked", strings.TrimSuffix(filepath.Base(deb), ".deb"))
	if err := unpack(deb, dir, "./boot/*"); err != nil {
		return "", "", "", err
	}
	m, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(m) != 1 {
		return "", "", "", fmt.Errorf("unpacking %s: want one boot/vmlinuz-*, found %d", filepath.Base(deb), len(m))
	}
	return m[0], strings.TrimPrefix(filepath.Base(m[0]), "vmlinuz-"), deb, nil
}

// busybox fetches busybox-static and returns its binary and the .deb.
func busybox(cache string, a *aptSource) (bin, deb string, err error) {
	deb, err = fetchDeb(cache, a, "busybox-static")
	if err != nil {
		return "", "", err
	}
	dir := filepath.Join(cache, "unpacked", strings.TrimSuffix(filepath.Base(deb), ".deb"))
	// /bin/busybox up to bookworm, /usr/bin/busybox from trixie (merged /usr).
	if err := unpack(deb, dir, "./*bin/busybox"); err != nil {
		return "", "", err
	}
	for _, p := range []string{"bin/busybox", "usr/bin/busybox"} {
		if fi, err := os.Lstat(filepath.Join(dir, p)); err == nil && fi.Mode().IsRegular() {
			return filepath.Join(dir, p), deb, nil
		}
	}
	return "", "", fmt.Errorf("unpacking %s: no busybox binary in bin/ or usr/bin/", filepath.Base(deb))
}

// ensureQemu installs the qemu package of m when its binary is missing
// (a fresh machine), as root; otherwise it says what to install.
func ensureQemu(host *aptSource, m machine) error {
	if _, err := exec.LookPath(m.qemu); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s not found: apt-get install --no-install-recommends %s", m.qemu, m.qemuPkg)
	}
	fmt.Fprintln(os.Stderr, "vm: installing", m.qemuPkg)
	install := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "install", "-y", "-qq", "--no-install-recommends", m.qemuPkg)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err != nil {
		// The package lists may be missing or stale on a fresh machine.
		if err := host.update(); err != nil {
			return fmt.Errorf("installing %s: %w", m.qemuPkg, err)
		}
		if b, err := install(); err != nil {
			return fmt.Errorf("installing %s: %v: %s", m.qemuPkg, err, b)
		}
	}
	return nil
}

// prune removes the cached packages and unpacked trees that neither this
// run used nor a -kernel entry last resolved to (an older kernel once
// Debian published a newer one), so the cache does not grow by 70 MB
// with every kernel update, while a run of one kernel keeps the others.
func prune(cache string, keep ...string) {
	used := map[string]bool{}
	for _, k := range append(keep, recordedDebs(cache)...) {
		used[strings.TrimSuffix(filepath.Base(k), ".deb")] = true
	}
	debs, _ := filepath.Glob(filepath.Join(cache, "debs", "*.deb"))
	for _, d := range debs {
		if !used[strings.TrimSuffix(filepath.Base(d), ".deb")] {
			os.Remove(d)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(cache, "unpacked", "*"))
	for _, d := range dirs {
		if !used[filepath.Base(d)] {
			os.RemoveAll(d)
		}
	}
}
