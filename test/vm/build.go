package main

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
)

// defaultPackages are the packages whose tests load BPF programs or
// provoke kernel events (they skip without root), plus gfp, whose names
// come from the running kernel's BTF.
var defaultPackages = []string{
	"./internal/probe/loader", "./internal/command/capture", "./internal/command/watch", "./cmd/memtrace",
	"./internal/testing/provoke", "./internal/probe/tracefs", "./pkg/gfp",
}

// guestPrograms are built into the initramfs next to the test binaries.
var guestPrograms = []string{"./cmd/memtrace", "./test/provoke", "./test/vm/e2e", "./test/vm/guest"}

// build compiles the test binaries of pkgs and the guest programs into
// dir for arch, static (CGO_ENABLED=0: the guest has no libc) and without
// symbol tables (smaller initramfs; Go's stack traces do not need them).
func build(repo, dir, arch string, pkgs []string) error {
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	seen := map[string]string{}
	for _, p := range pkgs {
		// go test -c -o dir/ names each binary after the package's
		// directory; two packages with one name would overwrite each other.
		if prev, ok := seen[path.Base(p)]; ok {
			return fmt.Errorf("building tests: %s and %s would both be %s.test", prev, p, path.Base(p))
		}
		seen[path.Base(p)] = p
	}
	version := "vm"
	if b, err := exec.Command("git", "-C", repo, "describe", "--tags", "--always", "--dirty").Output(); err == nil {
		version = strings.TrimSpace(string(b))
	}
	cmds := [][]string{
		append([]string{"go", "build", "-ldflags=-s -w -X main.version=" + version, "-o", dir + "/"}, guestPrograms...),
	}
	if len(pkgs) > 0 {
		cmds = append(cmds, append([]string{"go", "test", "-c", "-ldflags=-s -w", "-o", dir + "/"}, pkgs...))
	}
	for _, args := range cmds {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir, cmd.Env = repo, env
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building %s: %w", strings.Join(args[:3], " "), err)
		}
	}
	return nil
}
