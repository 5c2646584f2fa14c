package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// watchCreate returns a channel of the names created in dir (inotify).
func watchCreate(t *testing.T, dir string) <-chan string {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	names := make(chan string, 64)
	go func() {
		defer close(names)
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(fd, buf)
			if err != nil || n <= 0 {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				names <- string(bytes.TrimRight(name, "\x00"))
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}()
	t.Cleanup(func() { unix.Close(fd) })
	return names
}

// TestRecordKilledMidWrite: a recorder killed (SIGKILL: no cleanup runs)
// while it writes an incident leaves no partial incident file, only its
// temporary file, which the next recorder removes as it starts.
func TestRecordKilledMidWrite(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	const comm = "mt-reckill"
	bin := buildMemtrace(t)
	ns := privateMountNS(t)
	dir := t.TempDir()
	created := watchCreate(t, dir)
	var temp string
	for attempt := 1; attempt <= 3 && temp == ""; attempt++ {
		ready := filepath.Join(t.TempDir(), "ready")
		// Fast samples for a few seconds make a file of a few MB, whose
		// writing takes long enough to be killed in the middle.
		p := startProc(t, ns.command(bin, "record", "--dir", dir, "--comm", comm, "--burst", "5/1s", "--quiet", "0",
			"--sample-interval", "10ms", "--cooldown", "0", "--ready-file", ready))
		pid := p.waitReady(t, ready)
		time.Sleep(3 * time.Second)
		provoked := make(chan error, 1)
		go func() { _, err := provoke.AllocFailures(10, provoke.WithComm(comm)); provoked <- err }()
		guard := time.After(2 * time.Minute) // a hang, not a time the test measures
	watch:
		for {
			select {
			case name := <-created:
				if strings.HasPrefix(name, ".incident-") && strings.HasSuffix(name, ".tmp") {
					syscall.Kill(pid, syscall.SIGKILL)
					break watch
				}
			case <-guard:
				t.Fatal("no incident file was written within 2 minutes")
			}
		}
		if err := <-provoked; err != nil {
			t.Fatal(err)
		}
		st := p.wait(t, nil)
		if ws, ok := st.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("memtrace ended with %v, not killed", st)
		}
		// Every incident file there is whole; a temporary file means the
		// kill came mid-write.
		incidentFiles(t, dir, false)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") {
				temp = e.Name()
			}
		}
		t.Logf("attempt %d: %d entries, temporary file %q", attempt, len(entries), temp)
	}
	if temp == "" {
		t.Fatal("three kills all came after the write: nothing was tested")
	}

	// The next recorder removes it, and leaves the whole files alone.
	before := incidentFiles(t, dir, false)
	ready := filepath.Join(t.TempDir(), "ready")
	// Filtered like the first: another test's failures on this host
	// must not make it write an incident of its own.
	p := startProc(t, ns.command(bin, "record", "--dir", dir, "--comm", comm, "--ready-file", ready))
	pid := p.waitReady(t, ready)
	if exists(filepath.Join(dir, temp)) {
		t.Errorf("%s still there after a recorder started", temp)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	p.exitedWith(t, p.wait(t, nil), 0)
	if after := incidentFiles(t, dir, false); len(after) != len(before) {
		t.Errorf("%d incident files before the restart, %d after", len(before), len(after))
	}
	if !strings.Contains(p.stderr.String(), "removed 1 unfinished temporary file") {
		t.Errorf("the recorder did not say it removed the temporary file:\n%s", p.stderr.String())
	}
}
