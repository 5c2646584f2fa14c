// Package proto is what the host runner and the guest init agree on: the
// plan the host puts in the initramfs, and the line protocol the guest
// writes on its second serial port (the first one carries the kernel
// console, whose messages would otherwise interleave with test output).
//
// The stream is plain text, so that it can be read as it arrives; lines
// starting with Marker frame it:
//
//	@@memtrace-vm info kernel=6.1.0-56-amd64
//	@@memtrace-vm begin internal/probe/loader
//	...the step's output (stdout and stderr)...
//	@@memtrace-vm end internal/probe/loader exit=0 seconds=12.3
//	@@memtrace-vm file e2e/capture-default.json 12345
//	...base64 lines...
//	@@memtrace-vm endfile
//	@@memtrace-vm done
package proto

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// CgroupParam on the kernel command line overrides Plan.Cgroup for one
// kernel (the plan is shared by every kernel of an architecture): v2 on
// kernels built without cgroup v1's memory controller.
const CgroupParam = "memtrace_vm.cgroup"

// PlanPath is where the plan is in the initramfs.
const PlanPath = "/vm/plan.json"

// Plan is what the guest does after setting up its mounts.
type Plan struct {
	// Cgroup is "v1" (memory controller on a v1 hierarchy, cgroup2 on
	// /sys/fs/cgroup/unified, as on this project's CI host) or "v2"
	// (unified hierarchy, as systemd sets up Debian 12).
	Cgroup string
	// Results is the serial port the guest writes its results to; the
	// other one is the kernel console ("/dev/ttyS1" when empty).
	Results string
	Steps   []Step
}

// Step is one program the guest runs, in Dir, bounded by Timeout (the
// guest kills its process group past it).
type Step struct {
	Name    string
	Dir     string
	Args    []string
	Env     []string
	Timeout time.Duration
	// Files are sent back after the step, whatever its exit code, if they
	// exist (a glob per entry).
	Files []string
}

// Marker starts every framing line.
const Marker = "@@memtrace-vm "

// Result is a finished step as the host saw it.
type Result struct {
	Name    string
	Exit    int // -1: killed by the timeout or never finished
	Seconds float64
	Output  string
	At      time.Time // when the host read its end marker
}

// Stream is everything the host read from the guest.
type Stream struct {
	Info    map[string]string
	Results []Result
	Files   map[string][]byte
	Done    bool      // the guest finished its plan (as opposed to dying)
	InfoAt  time.Time // when the host read the guest's info line: booted
}

// Read parses a stream. Every raw line also goes to echo (may be nil), so
// the user sees the tests run; Read returns at EOF, whether or not the
// guest said done.
func Read(r io.Reader, echo io.Writer) (*Stream, error) {
	s := &Stream{Info: map[string]string{}, Files: map[string][]byte{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	var cur *Result
	var out strings.Builder
	var file string
	var b64 strings.Builder
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if file != "" {
			if line == Marker+"endfile" {
				data, err := base64.StdEncoding.DecodeString(b64.String())
				if err != nil {
					return s, fmt.Errorf("decoding file %s from the guest: %w", file, err)
				}
				s.Files[file] = data
				file = ""
				b64.Reset()
			} else {
				b64.WriteString(line)
			}
			continue
		}
		if echo != nil {
			fmt.Fprintln(echo, line)
		}
		rest, ok := strings.CutPrefix(line, Marker)
		if !ok {
			if cur != nil {
				out.WriteString(line + "\n")
			}
			continue
		}
		f := strings.Fields(rest)
		switch {
		case len(f) >= 2 && f[0] == "info":
			if s.InfoAt.IsZero() {
				s.InfoAt = time.Now()
			}
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				s.Info[k] = v
			}
		case len(f) == 2 && f[0] == "begin":
			cur = &Result{Name: f[1], Exit: -1}
			out.Reset()
		case len(f) >= 3 && f[0] == "end" && cur != nil && f[1] == cur.Name:
			for _, kv := range f[2:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "exit":
					cur.Exit, _ = strconv.Atoi(v)
				case "seconds":
					cur.Seconds, _ = strconv.ParseFloat(v, 64)
				}
			}
			cur.Output = out.String()
			cur.At = time.Now()
			s.Results = append(s.Results, *cur)
			cur = nil
		case len(f) == 3 && f[0] == "file":
			file = f[1]
		case len(f) == 1 && f[0] == "done":
			s.Done = true
		}
	}
	if cur != nil {
		// The guest died inside a step: keep what it printed.
		cur.Output = out.String()
		cur.At = time.Now()
		s.Results = append(s.Results, *cur)
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("reading the guest's output: %w", err)
	}
	return s, nil
}

// WriteFile frames one file for the host.
func WriteFile(w io.Writer, name string, data []byte) error {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	fmt.Fprintf(&b, "%sfile %s %d\n", Marker, name, len(data))
	for len(enc) > 0 {
		n := min(len(enc), 76)
		b.WriteString(enc[:n] + "\n")
		enc = enc[n:]
	}
	b.WriteString(Marker + "endfile\n")
	_, err := io.WriteString(w, b.String())
	return err
}
