package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// defaultKernels are what make test-kernels boots: Debian 12's 6.1,
// Debian 11's 5.10 and Debian 13's 6.12 (the allocator's _noprof names,
// fexit there) on amd64, and Debian 12's 6.1 on arm64, each the newest
// kernel of its suite's security updates.
const defaultKernels = "bookworm:linux-image-amd64,bullseye:linux-image-amd64,trixie:linux-image-amd64,bookworm:linux-image-arm64"

// kernelEntry is one element of -kernel: a kernel image package and the
// Debian suite it comes from ("" for the host's apt sources).
type kernelEntry struct {
	suite, pkg string
}

// arch is the Debian (and Go) architecture of the kernel: arm64 for
// Debian's linux-image-*-arm64 packages, amd64 for every other.
func (e kernelEntry) arch() string {
	if strings.HasSuffix(e.pkg, "-arm64") {
		return "arm64"
	}
	return "amd64"
}

func (e kernelEntry) String() string {
	if e.suite == "" {
		return e.pkg
	}
	return e.suite + ":" + e.pkg
}

var (
	suiteName   = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	packageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
)

// parseKernels parses -kernel: comma-separated SUITE:PACKAGE or PACKAGE
// entries, in the order they are booted.
func parseKernels(s string) ([]kernelEntry, error) {
	var out []kernelEntry
	seen := map[kernelEntry]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var e kernelEntry
		if suite, pkg, ok := strings.Cut(f, ":"); ok {
			e = kernelEntry{suite: suite, pkg: pkg}
			if !suiteName.MatchString(suite) {
				return nil, fmt.Errorf("parsing -kernel %q: %q is not a Debian suite", f, suite)
			}
		} else {
			e = kernelEntry{pkg: f}
		}
		if !packageName.MatchString(e.pkg) {
			return nil, fmt.Errorf("parsing -kernel %q: %q is not a package name", f, e.pkg)
		}
		// The host's apt lists hold its own architecture only; adding
		// one would change the host's apt and dpkg configuration.
		if e.suite == "" && e.arch() != runtime.GOARCH {
			return nil, fmt.Errorf("parsing -kernel %q: a %s kernel comes from a Debian suite (SUITE:%s), not the host's apt sources", f, e.arch(), e.pkg)
		}
		if seen[e] {
			return nil, fmt.Errorf("parsing -kernel: %s is listed twice", e)
		}
		seen[e] = true
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, errors.New("parsing -kernel: no kernel given")
	}
	return out, nil
}

// kernel is a fetched and unpacked kernel package.
type kernel struct {
	entry   kernelEntry
	pkg     string // the concrete package: linux-image-6.1.0-56-amd64
	distro  string // "Debian 12", "" from the host's apt
	vmlinuz string
	release string // what it boots: 6.1.0-56-amd64
	deb     string
}

// fetchKernel resolves, fetches and unpacks one -kernel entry. When the
// suite cannot be reached, the package the entry resolved to last time
// (recorded in CACHE/kernels) is used if its .deb is cached.
func fetchKernel(cache string, a *aptSource, e kernelEntry) (*kernel, error) {
	pkg, err := resolveKernel(a, e.pkg)
	if err != nil {
		deb := recordedDeb(cache, e)
		if deb == "" {
			return nil, fmt.Errorf("fetching %s: %w", e, err)
		}
		pkg, _, _ = strings.Cut(deb, "_")
		fmt.Fprintf(os.Stderr, "vm: %v; using the cached %s\n", err, pkg)
	}
	vmlinuz, release, deb, err := kernelFiles(cache, a, pkg)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", e, err)
	}
	if pkg != e.pkg {
		if err := recordDeb(cache, e, deb); err != nil {
			return nil, err
		}
	}
	return &kernel{entry: e, pkg: pkg, distro: a.release(), vmlinuz: vmlinuz, release: release, deb: deb}, nil
}

// Each metapackage entry records the .deb it last resolved to, so that an
// offline run finds it and prune keeps it while another -kernel runs:
// only a newer resolution of the same entry makes a kernel .deb stale.

func recordPath(cache string, e kernelEntry) string {
	// Neither suites nor package names contain "_".
	name := e.pkg
	if e.suite != "" {
		name = e.suite + "_" + e.pkg
	}
	return filepath.Join(cache, "kernels", name)
}

func recordDeb(cache string, e kernelEntry, deb string) error {
	p := recordPath(cache, e)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("recording the kernel of %s: %w", e, err)
	}
	if err := os.WriteFile(p, []byte(filepath.Base(deb)+"\n"), 0o644); err != nil {
		return fmt.Errorf("recording the kernel of %s: %w", e, err)
	}
	return nil
}

// recordedDeb is the base name of the .deb e last resolved to, or "".
func recordedDeb(cache string, e kernelEntry) string {
	b, err := os.ReadFile(recordPath(cache, e))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// recordedDebs are the .debs every recorded entry resolved to.
func recordedDebs(cache string) []string {
	m, _ := filepath.Glob(filepath.Join(cache, "kernels", "*"))
	var out []string
	for _, p := range m {
		if b, err := os.ReadFile(p); err == nil {
			out = append(out, strings.TrimSpace(string(b)))
		}
	}
	return out
}

// shortVersion is a release's major.minor: 6.1.0-56-amd64 → 6.1.
func shortVersion(release string) string {
	if m := regexp.MustCompile(`^\d+\.\d+`).FindString(release); m != "" {
		return m
	}
	return release
}

// cgroupMode is the memory cgroup mode k's guest runs with: the one asked
// for, except v2 on a kernel whose config disables cgroup v1's memory
// controller (CONFIG_MEMCG_V1, off in Debian 13's 6.12), where mounting
// v1's memory hierarchy fails.
func cgroupMode(k *kernel, want string) string {
	if want != "v1" {
		return want
	}
	cfg := filepath.Join(filepath.Dir(k.vmlinuz), "config-"+k.release)
	b, err := os.ReadFile(cfg)
	if err == nil && bytes.Contains(b, []byte("\n# CONFIG_MEMCG_V1 is not set\n")) {
		return "v2"
	}
	return want
}
