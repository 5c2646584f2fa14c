package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// debianKeyring signs deb.debian.org; Debian's debian-archive-keyring
// package also holds the keys of older releases (bullseye on bookworm).
const debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// aptSource is where packages come from: the host's apt configuration
// (suite "") or one Debian suite through a private apt state under the
// cache directory. The private state has its own sources, lists, package
// cache and an empty dpkg status, so the host's apt configuration and
// lists are never changed and the host's installed packages do not
// influence which version a suite offers.
type aptSource struct {
	suite   string
	arch    string // Debian architecture of the packages: amd64, arm64
	dir     string // CACHE/apt/SUITE (SUITE_ARCH but for amd64); "" for the host's apt
	updated bool   // apt-get update ran in this process
}

func hostApt() *aptSource { return &aptSource{arch: runtime.GOARCH} }

// suiteApt prepares the private apt state of suite under cache, for the
// packages of one architecture: the sources of the suite and of its
// security updates (where new kernels are published). Another
// architecture than the host's (arm64 kernels and busybox) needs no
// `dpkg --add-architecture`: apt is told the architecture of the private
// state only (APT::Architecture), and apt-get download installs nothing.
func suiteApt(cache, suite, arch string) (*aptSource, error) {
	name := suite
	if arch != "amd64" {
		name += "_" + arch // suites have no "_"
	}
	a := &aptSource{suite: suite, arch: arch, dir: filepath.Join(cache, "apt", name)}
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("preparing apt for %s: %w", suite, err)
		}
	}
	sources := fmt.Sprintf("deb [signed-by=%[1]s] http://deb.debian.org/debian %[2]s main\n"+
		"deb [signed-by=%[1]s] http://deb.debian.org/debian-security %[2]s-security main\n", debianKeyring, suite)
	if err := os.WriteFile(filepath.Join(a.dir, "sources.list"), []byte(sources), 0o644); err != nil {
		return nil, fmt.Errorf("preparing apt for %s: %w", suite, err)
	}
	status := filepath.Join(a.dir, "status")
	if _, err := os.Stat(status); err != nil {
		if err := os.WriteFile(status, nil, 0o644); err != nil {
			return nil, fmt.Errorf("preparing apt for %s: %w", suite, err)
		}
	}
	return a, nil
}

func (a *aptSource) String() string {
	if a.suite == "" {
		return "host apt"
	}
	if a.arch != "amd64" {
		return a.suite + " " + a.arch
	}
	return a.suite
}

// options point apt at the private state; none for the host's apt.
func (a *aptSource) options() []string {
	if a.dir == "" {
		return nil
	}
	o := []string{
		"Dir::Etc::SourceList=" + filepath.Join(a.dir, "sources.list"),
		"Dir::Etc::SourceParts=/dev/null",
		"Dir::Etc::Preferences=/dev/null",
		"Dir::Etc::PreferencesParts=/dev/null",
		"Dir::State::Lists=" + filepath.Join(a.dir, "lists"),
		"Dir::State::status=" + filepath.Join(a.dir, "status"),
		"Dir::Cache=" + filepath.Join(a.dir, "cache"),
		// Only this architecture's lists, whatever dpkg's foreign
		// architectures are.
		"APT::Architecture=" + a.arch,
		"APT::Architectures=" + a.arch,
	}
	var args []string
	for _, s := range o {
		args = append(args, "-o", s)
	}
	return args
}

// command is apt-get or apt-cache with the source's options before args.
func (a *aptSource) command(tool string, args ...string) *exec.Cmd {
	return exec.Command(tool, append(a.options(), args...)...)
}

// update runs apt-get update, at most once per process and source.
func (a *aptSource) update() error {
	a.updated = true
	args := []string{"update", "-qq"}
	if a.dir != "" {
		// apt-get update only warns when it cannot fetch a list; for a
		// suite's own two sources that is the error to report (offline).
		// The host's sources may include third-party ones that are down.
		args = append(args, "--error-on=any")
	}
	if b, err := a.command("apt-get", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update (%s): %v: %s", a, err, bytes.TrimSpace(b))
	}
	return nil
}

// output runs an apt command; when apt knows no candidate for the
// package (a fresh machine or suite whose lists were never fetched) it
// runs apt-get update once and retries.
func (a *aptSource) output(tool string, args ...string) (string, error) {
	run := func() (string, error) {
		var stdout, stderr bytes.Buffer
		cmd := a.command(tool, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err == nil && strings.TrimSpace(stdout.String()) == "" {
			err = errors.New("no output")
		}
		if err != nil {
			return "", fmt.Errorf("%s %s (%s): %v: %s", tool, strings.Join(args, " "), a, err, strings.TrimSpace(stderr.String()))
		}
		return stdout.String(), nil
	}
	out, err := run()
	if err == nil || a.updated {
		return out, err
	}
	fmt.Fprintf(os.Stderr, "vm: apt-get update for %s (no candidate for the package)\n", a)
	if uerr := a.update(); uerr != nil {
		return "", fmt.Errorf("%v; %v", err, uerr)
	}
	return run()
}

// release names the suite's Debian release ("Debian 12") from its
// InRelease file, which update fetched; the suite's name when the lists
// are missing, "" for the host's apt.
func (a *aptSource) release() string {
	if a.dir == "" {
		return ""
	}
	m, _ := filepath.Glob(filepath.Join(a.dir, "lists", "*_dists_"+a.suite+"_InRelease"))
	for _, p := range m {
		if v := inReleaseVersion(p); v != "" {
			major, _, _ := strings.Cut(v, ".")
			return "Debian " + major
		}
	}
	return "Debian " + a.suite
}

// inReleaseVersion returns the Version field of a (clearsigned) Release
// file: "11.11". The file lists below the fields are indented, so the
// first line that starts with "Version: " is the field.
func inReleaseVersion(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Version: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
