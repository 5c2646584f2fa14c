package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/present/text"
)

// hostileValues are tried on every flag of every command, by the flag's
// type. Each must end in exit 2 with one line naming the flag and the
// usage, unless acceptedValues says the value is legitimately valid.
var hostileValues = map[string][]string{
	"duration": {"-1s", "-1ns", "0", "1ns", "2562047h", "2562048h", "", "soon", "1", "1e3s", "\xff", "NaN"},
	"int":      {"-1", "0", "1", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "", "x", "1.5", "\xff"},
	"uint32":   {"-1", "0", "1", "4294967295", "4294967296", "", "x", "1.5", "\xff"},
	"string":   {"", "\xff\xfe", "\x1b[2J", strings.Repeat("a", 4097), "-", "/nonexistent/x"},
	"bool":     {"maybe", "", "2", "\xff", "true", "false"},
	"list":     {"", ",", "bogus", "alloc,bogus", "\xff"},
	"float64":  {"-1", "-0.01", "0", "100", "100.01", "NaN", "Inf", "", "x", "\xff", "1e400"},
}

// pathFlags name files memtrace creates or reads: only the explicit empty
// value is a usage error here; whether a path can be written or read is
// checked by the commands themselves (and by their own tests).
var pathFlags = []string{"capture --output", "capture --ready-file", "watch --ready-file", "serve --ready-file",
	"verify --ready-file", "doctor --kmsg-file", "hugepages --proc-root",
	"capture --pprof", "record --dir", "record --ready-file", "serve --record-dir", "report --output", "report --pprof", "hugepages --sys-root", "doctor --proc-root", "doctor --sys-root"}

// acceptedValues are the hostile values that are legitimately valid, per
// "command --flag" ("*" for every flag of a type: true and false for
// booleans). Everything else in hostileValues must be rejected.
var acceptedValues = map[string][]string{
	"* bool": {"true", "false"},

	"capture --duration":     {"0", "1ns", "2562047h"}, // 0: until Ctrl-C
	"capture --max-events":   {"0", "1", "9223372036854775807"},
	"capture --output":       {"\xff\xfe", "\x1b[2J", strings.Repeat("a", 4097), "-", "/nonexistent/x"},
	"capture --comm":         {"\xff\xfe", "\x1b[2J", "-", "/nonexistent/x"}, // a task name is up to 15 bytes, any bytes
	"capture --pid":          {"1"},
	"capture --sample-first": {"0", "1", "4294967295"}, // 0: send every event

	"watch --interval":        {"2562047h"},
	"watch --top-stacks":      {"1"},
	"watch --age-out":         {"0", "1ns", "2562047h"}, // 0: never
	"watch --comm":            {"\xff\xfe", "\x1b[2J", "-", "/nonexistent/x"},
	"watch --pid":             {"1"},
	"watch --sample-first":    {"0", "1", "4294967295"},
	"watch --stall-threshold": {"0", "1ns", "2562047h"}, // 0: none listed

	"serve --max-series":   {"0", "1", "9223372036854775807"}, // 0: no limit
	"serve --age-out":      {"0", "1ns", "2562047h"},          // 0: never
	"serve --interval":     {"2562047h"},
	"serve --comm":         {"\xff\xfe", "\x1b[2J", "-", "/nonexistent/x"},
	"serve --pid":          {"1"},
	"serve --sample-first": {"0", "1", "4294967295"},

	"record --after":        {"0", "1ns"},
	"record --cooldown":     {"0", "1ns", "2562047h"}, // 0: none
	"record --quiet":        {"0", "1ns", "2562047h"}, // 0: trigger off
	"record --stall":        {"0", "1ns", "2562047h"},
	"record --age-out":      {"0", "1ns", "2562047h"},
	"record --max-events":   {"1"},
	"record --psi":          {"0", "100"},
	"record --comm":         {"\xff\xfe", "\x1b[2J", "-", "/nonexistent/x"},
	"record --pid":          {"1"},
	"record --sample-first": {"0", "1", "4294967295"},

	"verify --comm":    {"\xff\xfe", "\x1b[2J", "-", "/nonexistent/x"},
	"verify --pid":     {"1"},
	"verify --timeout": {"0", "1ns", "2562047h"}, // 0: until Ctrl-C
	"verify --settle":  {"0", "1ns", "2562047h"},
	"verify --follow":  {"0", "1ns", "2562047h"}, // 0: no following

	"hugepages --processes": {"0", "1"},

	"doctor --since":    {"0", "1ns", "2562047h"}, // 0: the whole log
	"doctor --interval": {"0", "1ns", "2562047h"}, // 0: counters since boot
	"doctor --measure":  {"0", "1ns", "2562047h"}, // 0: no tracing
	"doctor --top":      {"0", "1", "9223372036854775807"},
}

// baseArgs makes a command otherwise valid, so that a rejection can only
// come from the flag under test.
func baseArgs(cmd, flag string) []string {
	switch {
	case cmd == "verify" && !slices.Contains([]string{"comm", "pid", "cgroup"}, flag):
		return []string{"--pid", strconv.Itoa(os.Getpid())}
	case cmd == "hugepages" && flag == "processes":
		return []string{"--plan", "1G"}
	case cmd == "record" && flag != "dir":
		return []string{"--dir", os.TempDir()}
	case cmd == "report":
		return []string{"capture.json", "-o", filepath.Join(os.TempDir(), "report.html")}
	}
	return nil
}

// runGuarded runs the command line with every command stopping before its
// work, and turns a panic into a test failure.
func runGuarded(t testing.TB, args []string) (code int, stdout, stderr string) {
	t.Helper()
	stopBeforeWork = true
	defer func() { stopBeforeWork = false }()
	var out, errb bytes.Buffer
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("memtrace %q panicked: %v", args, r)
			}
		}()
		code = run(args, &out, &errb)
	}()
	return code, out.String(), errb.String()
}

// checkUsageError checks the shape of a usage error: exit 2, nothing on
// standard output, one line (naming what it is about, escaped), a blank
// line, then the usage.
func checkUsageError(t *testing.T, args []string, about string, code int, stdout, stderr string) {
	t.Helper()
	if code != exitUsage {
		t.Errorf("memtrace %q: exit %d, want 2\n%s", args, code, stderr)
		return
	}
	if stdout != "" {
		t.Errorf("memtrace %q: usage error wrote to standard output: %q", args, stdout)
	}
	lines := strings.SplitN(stderr, "\n", 3)
	first := lines[0]
	if len(lines) < 3 || !strings.HasPrefix(first, "memtrace") || lines[1] != "" || !strings.Contains(lines[2], "Usage:\n") {
		t.Errorf("memtrace %q: want one error line, a blank line and the usage, got:\n%s", args, stderr)
	}
	if about != "" && !strings.Contains(first, about) {
		t.Errorf("memtrace %q: the error does not name %s: %q", args, about, first)
	}
	for _, r := range stderr {
		if r != '\n' && text.Unsafe(r) {
			t.Errorf("memtrace %q: the error holds %U unescaped: %q", args, r, first)
			break
		}
	}
}

// TestEveryFlagRejectsHostileValues runs every command with every flag set
// to every hostile value of its type. No root is needed, and none is used
// as root: every check happens before the command's work, where the test
// stops it.
func TestEveryFlagRejectsHostileValues(t *testing.T) {
	tried := map[string]bool{}
	for _, c := range commands() {
		c.flagSet().VisitAll(func(f *pflag.Flag) {
			key := c.name + " --" + f.Name
			values, ok := hostileValues[f.Value.Type()]
			if !ok {
				t.Errorf("%s: no hostile values for flag type %q", key, f.Value.Type())
				return
			}
			if slices.Contains(pathFlags, key) {
				values = append([]string{""}, acceptedValues[key]...)
			}
			accepted := append(acceptedValues[key], acceptedValues["* "+f.Value.Type()]...)
			for _, v := range values {
				tried[key] = true
				args := append(append([]string{c.name}, baseArgs(c.name, f.Name)...), "--"+f.Name+"="+v)
				code, stdout, stderr := runGuarded(t, args)
				if slices.Contains(accepted, v) {
					if code != exitFail || stderr != fmt.Sprintf("memtrace %s: %v\n", c.name, errStoppedBeforeWork) {
						t.Errorf("memtrace %q: exit %d, want the value accepted:\n%s", args, code, stderr)
					}
					continue
				}
				checkUsageError(t, args, "-"+f.Name, code, stdout, stderr)
			}
		})
	}
	for key := range acceptedValues {
		if !strings.HasPrefix(key, "* ") && !tried[key] {
			t.Errorf("acceptedValues names %q, which is not a flag", key)
		}
	}
}

// TestFlagCombinations: mistakes that only a combination of flags or the
// arguments show, each from issue 16 or its kind.
func TestFlagCombinations(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, c := range []struct {
		args  []string
		about string
	}{
		{[]string{}, "no command"},
		{[]string{"help", "capture", "extra"}, `"extra"`},
		{[]string{"--help", "capture", "extra"}, `"extra"`},
		{[]string{"version", "extra"}, `"extra"`},
		{[]string{"--version", "extra"}, `"extra"`},
		{[]string{"help", "nosuchcommand"}, "nosuchcommand"},
		{[]string{"capture", "--pid", "99999999"}, "no such process"},
		{[]string{"watch", "--pid", "99999999"}, "no such process"},
		{[]string{"serve", "--pid", "99999999"}, "no such process"},
		{[]string{"capture", "--alloc-hook", "fexit", "--disable-hooks", "fexit"}, "--alloc-hook fexit"},
		{[]string{"watch", "--alloc-hook", "tp_btf", "--disable-hooks", "tracepoint,tp_btf"}, "--alloc-hook tp_btf"},
		{[]string{"capture", "--disable-hooks", "tp_btf,tracepoint,fexit"}, "--disable-hooks"},
		{[]string{"serve", "--signals", "hugetlb", "--disable-hooks", "tp_btf,tracepoint"}, "hugetlb"},
		{[]string{"capture", "--signals", "reclaim", "--disable-hooks", "tp_btf,tracepoint"}, "reclaim"},
		{[]string{"watch", "--signals", "compaction", "--disable-hooks", "tracepoint,tp_btf"}, "compaction"},
		{[]string{"capture", "--comm", "a-name-longer-than-15"}, "--comm"},
		{[]string{"capture", "--cgroup", "/no/such/cgroup"}, "--cgroup"},
		{[]string{"capture", "unexpected"}, `"unexpected"`},
		{[]string{"watch", "--age-out", "-1s"}, "--age-out"},
		{[]string{"serve", "--listen", ":99999"}, "--listen"},
		{[]string{"serve", "--listen", ":-1"}, "--listen"},
		{[]string{"serve", "--listen", "127.0.0.1:"}, "--listen"},
		{[]string{"serve", "--listen", "127.0.0.1"}, "--listen"},
		{[]string{"verify"}, "give a command"},
		{[]string{"verify", "--pid", "99999999"}, "no such process"},
		{[]string{"verify", "--pid", "0"}, "--pid 0"},
		{[]string{"verify", "--pid", "0", "--comm", "x"}, "only one"},
		{[]string{"verify", "--cgroup", "/no/such/cgroup"}, "--cgroup"},
		{[]string{"verify", "--", ""}, "empty"},
		{[]string{"verify", "--", "/nonexistent/command"}, "/nonexistent/command"},
		{[]string{"verify", "--", "no-such-command-in-path"}, "no-such-command-in-path"},
		{[]string{"verify", "--comm", "postgres", "--", "true"}, "only one"},
		{[]string{"verify", "--pid", self, "--min-size", "0"}, "--min-size"},
		{[]string{"hugepages", "--processes", "9223372036854775807", "--plan", "1G"}, "--processes"},
		{[]string{"hugepages", "--processes", "4194305", "--plan", "1G"}, "--processes"},
		{[]string{"hugepages", "--processes", "4000000", "--plan", "16000P"}, "16 EiB"},
		{[]string{"hugepages", "--processes", "5"}, "--plan"},
		{[]string{"hugepages", "--plan", "0"}, "--plan"},
		{[]string{"doctor", "--kernel", "not-a-release"}, "--kernel"},
		{[]string{"doctor", "extra"}, `"extra"`},
		{[]string{"record"}, "--dir"},
		{[]string{"record", "--dir", "/tmp", "extra"}, `"extra"`},
		{[]string{"record", "--dir", "/tmp", "--max-size", "lots"}, "--max-size"},
		{[]string{"record", "--dir", "/tmp", "--burst", "100"}, "--burst"},
		{[]string{"record", "--dir", "/tmp", "--rate-limit", "0/1h"}, "--rate-limit"},
		{[]string{"report"}, "no capture"},
		{[]string{"report", "x.json"}, "-o"},
	} {
		code, stdout, stderr := runGuarded(t, c.args)
		checkUsageError(t, c.args, c.about, code, stdout, stderr)
	}
}

// TestValidCombinations: what the checks must still accept.
func TestValidCombinations(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, args := range [][]string{
		{"capture", "--pid", self, "--alloc-hook", "tp_btf", "--disable-hooks", "fexit,tracepoint"},
		{"capture", "--signals", "alloc", "--disable-hooks", "tp_btf,tracepoint"}, // fexit is left
		{"serve", "--listen", "127.0.0.1:0"},
		{"serve", "--listen", "[::1]:http"},
		{"verify", "--", "true"},
		{"verify", "--pid", self},
		{"hugepages", "--plan", "64G", "--processes", "1000"},
		{"record", "--dir", "/tmp", "--burst", "off", "--rate-limit", "off", "--max-size", "0", "--psi", "0", "--huge=false"},
		{"record", "--dir", "/tmp", "--burst", "20/1s", "--rate-limit", "10/1h", "--max-size", "1G", "--signals", "alloc"},
		{"serve", "--listen", "127.0.0.1:0", "--record-dir", "/tmp"},
		{"report", "a.json", "b.json", "-o", "/tmp/r.html", "--pprof", "/tmp/p.pb.gz"},
		{"hugepages", "--plan", "1P", "--processes", "4194304"},
	} {
		code, _, stderr := runGuarded(t, args)
		if code != exitFail || !strings.Contains(stderr, errStoppedBeforeWork.Error()) {
			t.Errorf("memtrace %q: exit %d, want it accepted:\n%s", args, code, stderr)
		}
	}
	for _, args := range [][]string{{"help", "capture"}, {"--help", "watch"}, {"version"}, {"capture", "--help"}} {
		if code, stdout, _ := runGuarded(t, args); code != exitOK || stdout == "" {
			t.Errorf("memtrace %q: exit %d", args, code)
		}
	}
}

// FuzzArgs: whatever the command line, memtrace never panics, and either
// prints help or the version (exit 0), stops where its work would start
// (the line was accepted), or reports a usage error as one line and the
// usage (exit 2). Arguments are the fuzz string split at NUL bytes.
func FuzzArgs(f *testing.F) {
	for _, s := range []string{
		"capture\x00--duration\x00-1s", "watch\x00--pid\x0099999999", "serve\x00--listen\x00:99999",
		"verify\x00--\x00", "hugepages\x00--processes\x009223372036854775807\x00--plan\x001G",
		"help\x00capture\x00extra", "capture\x00--comm\x00\xff\xfe", "doctor\x00--top\x00-1",
		"watch\x00--alloc-hook\x00fexit\x00--disable-hooks\x00fexit", "verify\x00--pid\x001\x00--\x00true",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		if s == "" {
			args = nil
		}
		code, stdout, stderr := runGuarded(t, args)
		switch code {
		case exitOK:
			if stdout == "" {
				t.Errorf("memtrace %q: exit 0 with nothing printed", args)
			}
		case exitFail:
			if !strings.HasSuffix(stderr, errStoppedBeforeWork.Error()+"\n") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("memtrace %q: exit 1 before any work:\n%s", args, stderr)
			}
		case exitUsage:
			checkUsageError(t, args, "", code, stdout, stderr)
		default:
			t.Errorf("memtrace %q: exit %d", args, code)
		}
	})
}
