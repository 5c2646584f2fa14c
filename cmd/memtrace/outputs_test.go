package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// refused runs memtrace, which must refuse its arguments before attaching
// a probe: the ready file never appears (and, if given, the file at
// guarded keeps its content), the exit status is code and stderr starts
// with one line holding want.
func refused(t *testing.T, cmd *exec.Cmd, ready, guarded string, code int, want string) {
	t.Helper()
	var before []byte
	if guarded != "" {
		before, _ = os.ReadFile(guarded)
	}
	p := startProc(t, cmd)
	st := p.wait(t, func() string {
		if ready != "" && exists(ready) {
			return "memtrace attached its probes (the ready file appeared) before refusing"
		}
		if b, err := os.ReadFile(guarded); guarded != "" && (err != nil || string(b) != string(before)) {
			return "memtrace changed " + guarded
		}
		return ""
	})
	p.exitedWith(t, st, code)
	first, rest, _ := strings.Cut(p.stderr.String(), "\n")
	if !strings.Contains(first, want) {
		t.Errorf("stderr %q, want a line with %q", p.stderr.String(), want)
	}
	if code != exitUsage && strings.TrimSpace(rest) != "" {
		t.Errorf("more than one line on stderr:\n%s", p.stderr.String())
	}
}

// TestCaptureOutputCheckedFirst: an -o that cannot take the document once
// failed only after the capture (30 s later, or at Ctrl-C with -d 0),
// losing it. Now it fails before any probe is attached.
func TestCaptureOutputCheckedFirst(t *testing.T) {
	bin := buildMemtrace(t)
	dir := t.TempDir()
	cases := []struct {
		name, output string
		code         int
		want         string
	}{
		{"empty", "", exitUsage, "--output must not be empty"},
		{"missing directory", filepath.Join(dir, "missing", "c.json"), exitFail, "no such file or directory"},
		{"a directory", dir, exitFail, "is a directory"},
	}
	if os.Geteuid() == 0 {
		immutable := filepath.Join(dir, "immutable")
		if err := os.Mkdir(immutable, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("chattr", "+i", immutable).CombinedOutput(); err != nil {
			t.Logf("immutable directory case skipped: chattr +i: %v %s", err, out)
		} else {
			t.Cleanup(func() { exec.Command("chattr", "-i", immutable).Run() })
			cases = append(cases, struct {
				name, output string
				code         int
				want         string
			}{"immutable directory", filepath.Join(immutable, "c.json"), exitFail, "operation not permitted"})
		}
	} else {
		readOnly := filepath.Join(dir, "read-only")
		if err := os.Mkdir(readOnly, 0o555); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name, output string
			code         int
			want         string
		}{"unwritable directory", filepath.Join(readOnly, "c.json"), exitFail, "permission denied"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ready := filepath.Join(t.TempDir(), "ready")
			refused(t, exec.Command(bin, "capture", "--duration", "0", "-o", c.output, "--ready-file", ready), ready, "", c.code, c.want)
		})
	}
	// -o - to a closed standard output: Go's runtime puts /dev/null there,
	// where the document would vanish.
	t.Run("closed stdout", func(t *testing.T) {
		ready := filepath.Join(t.TempDir(), "ready")
		cmd := exec.Command("sh", "-c", `exec "$0" "$@" >&-`, bin, "capture", "--duration", "0", "-o", "-", "--ready-file", ready)
		refused(t, cmd, ready, "", exitFail, "standard output is closed")
	})
}

// TestWatchClosedStdout: `memtrace watch --json >&-` once ran until
// killed, writing to the /dev/null Go's runtime opens in place of a closed
// descriptor.
func TestWatchClosedStdout(t *testing.T) {
	bin := buildMemtrace(t)
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command("sh", "-c", `exec "$0" "$@" >&-`, bin, "watch", "--json", "--ready-file", ready)
	refused(t, cmd, ready, "", exitFail, "memtrace watch: standard output is closed")
	// A shell's >/dev/null is a choice, not a closed output: not refused
	// (it fails later, unprivileged, for want of CAP_BPF, or runs as root).
	if os.Geteuid() != 0 {
		cmd := exec.Command(bin, "watch", "--ready-file", ready)
		p := startProc(t, cmd)
		p.wait(t, nil)
		if strings.Contains(p.stderr.String(), "standard output is closed") {
			t.Errorf(">/dev/null taken for a closed output: %s", p.stderr.String())
		}
	}
}

// TestReadyFileNeverFollowed: memtrace runs as root, and --ready-file is
// often in /tmp, where anyone can plant a symlink. It once wrote through
// one, overwriting (or creating) the file it pointed to. Now every command
// refuses an existing path, before tracing starts.
func TestReadyFileNeverFollowed(t *testing.T) {
	bin := buildMemtrace(t)
	commands := map[string][]string{
		"capture": {"capture", "--duration", "2s", "-o", os.DevNull},
		"watch":   {"watch", "--json"},
		"serve":   {"serve", "--listen", "127.0.0.1:0"},
		"verify":  {"verify", "--timeout", "2s", "--comm", "no-such-comm"},
	}
	for name, args := range commands {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			target, link := filepath.Join(dir, "precious"), filepath.Join(dir, "ready")
			if err := os.WriteFile(target, []byte("keep\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			refused(t, exec.Command(bin, append(args, "--ready-file", link)...), "", target, exitFail, "a symlink is already there")
		})
	}
	t.Run("dangling symlink", func(t *testing.T) {
		dir := t.TempDir()
		target, link := filepath.Join(dir, "created-by-root"), filepath.Join(dir, "ready")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		refused(t, exec.Command(bin, append(commands["capture"], "--ready-file", link)...), target, "", exitFail, "a symlink is already there")
	})
	t.Run("existing file", func(t *testing.T) {
		ready := filepath.Join(t.TempDir(), "ready")
		if err := os.WriteFile(ready, []byte("keep\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		refused(t, exec.Command(bin, append(commands["capture"], "--ready-file", ready)...), "", ready, exitFail, "a file is already there")
	})
}

// A symlink planted between the check at start and the creation, once
// the probes are attached, is not followed either.
func TestReadyFileCreateRefusesLateSymlink(t *testing.T) {
	dir := t.TempDir()
	target, path := filepath.Join(dir, "precious"), filepath.Join(dir, "ready")
	r, err := newReadyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := r.create(); err == nil {
		t.Fatal("created the ready file through a symlink")
	}
	if exists(target) {
		t.Error("the symlink's target was created")
	}
	r.remove()
	if !exists(path) {
		t.Error("remove deleted a symlink it did not create")
	}
}

func TestReadyFileRemovedAtExit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ready")
	r, err := newReadyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.create(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) == "" {
		t.Fatalf("ready file %q: %v", b, err)
	}
	r.remove()
	if exists(path) {
		t.Error("ready file not removed")
	}
	if r, err := newReadyFile(""); r != nil || err != nil || r.create() != nil {
		t.Error("an empty --ready-file is not a no-op")
	}
}
