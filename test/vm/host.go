package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// hostResult is test/vm/e2e run on this machine.
type hostResult struct {
	kernel    string
	exit      int
	err       error
	summaries []proto.Summary
}

// runHostE2E runs the same e2e program, with the same binaries, here.
func runHostE2E(ctx context.Context, bins, out string) *hostResult {
	fmt.Println("\n== e2e on this machine")
	r := &hostResult{kernel: hostRelease()}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bins, "e2e"),
		"-memtrace", filepath.Join(bins, "memtrace"), "-provoke", filepath.Join(bins, "provoke"), "-out", out)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err := cmd.Run()
	r.exit = cmd.ProcessState.ExitCode()
	if err != nil && r.exit < 0 {
		r.err = err
	}
	r.summaries = readSummaries(out)
	return r
}

func hostRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// repoRoot is the module's root: the runner builds and packs from there.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("finding the module: not inside memtrace's module")
	}
	return filepath.Dir(mod), nil
}
