package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/memtrace/memtrace/test/vm/internal/cpio"
	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// writeInitramfs builds the guest's root filesystem as an uncompressed
// cpio archive (decompressing under emulation would cost seconds):
//
//	/init          test/vm/guest
//	/bin/          busybox, whose applets (a shell, for tests and people)
//	               the guest links at boot
//	/vm/bin/       memtrace, provoke, e2e and the package test binaries
//	/vm/plan.json  what the guest runs
//	/src/          the work tree's files, so tests find testdata/ and
//	               ../../docs as they do on the host; each test binary
//	               runs in its package's directory
//	/lib/modules/  trees (the lab's network device modules), if any
func writeInitramfs(dst, repo, bins, bb string, plan proto.Plan, trees ...string) error {
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("creating the initramfs: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	cw := cpio.NewWriter(w)
	if err := fill(cw, repo, bins, bb, plan); err != nil {
		f.Close()
		return err
	}
	for _, t := range trees {
		if err := addTree(cw, t); err != nil {
			f.Close()
			return fmt.Errorf("adding %s to the initramfs: %w", t, err)
		}
	}
	if err := cw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing the initramfs: %w", err)
	}
	return f.Close()
}

func fill(cw *cpio.Writer, repo, bins, bb string, plan proto.Plan) error {
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "root", "etc", "usr/bin", "sbin"} {
		if err := cw.Dir(d); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd":   "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":    "root:x:0:\n",
		"etc/hostname": "memtrace-vm\n",
	}
	for name, s := range files {
		if err := cw.File(name, 0o644, []byte(s)); err != nil {
			return err
		}
	}
	// The guest links the applets (busybox --install) at boot.
	if err := cw.CopyFile("bin/busybox", bb); err != nil {
		return err
	}
	entries, err := os.ReadDir(bins)
	if err != nil {
		return fmt.Errorf("reading the built binaries: %w", err)
	}
	for _, e := range entries {
		name := "vm/bin/" + e.Name()
		if e.Name() == "guest" {
			name = "init"
		}
		if err := cw.CopyFile(name, filepath.Join(bins, e.Name())); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the plan: %w", err)
	}
	if err := cw.File(strings.TrimPrefix(proto.PlanPath, "/"), 0o644, b); err != nil {
		return err
	}
	return addSources(cw, repo)
}

// addSources copies the files git knows or would add (tracked, and
// untracked but not ignored): the tree the test binaries were built from.
func addSources(cw *cpio.Writer, repo string) error {
	out, err := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("listing the work tree: %w", err)
	}
	for _, name := range bytes.Split(out, []byte{0}) {
		if len(name) == 0 {
			continue
		}
		src := filepath.Join(repo, string(name))
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink
		}
		if err := cw.CopyFile("src/"+string(name), src); err != nil {
			return err
		}
	}
	return nil
}
