package verify

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestValidate pins verify's own rules, which live only in
// Options.Validate: the command line (cmd/memtrace) and Run both call it.
// A pid given as 0 is a target too (and then not a process), so that
// "--pid 0 --comm x" is two targets, not a silent comm filter.
func TestValidate(t *testing.T) {
	zero, self := 0, 1
	for _, c := range []struct {
		name string
		o    Options
		want string // "" for valid
	}{
		{"command", Options{Command: []string{"true"}}, ""},
		{"pid", Options{Pid: &self}, ""},
		{"comm of 15", Options{Comm: "postgres-worker"}, ""},
		{"cgroup", Options{Cgroup: "/system.slice/x.service"}, ""},
		{"nothing", Options{}, "give a command after --, or one of --comm, --pid, --cgroup"},
		{"two", Options{Comm: "x", Cgroup: "/y"}, "only one"},
		{"pid 0 and comm", Options{Pid: &zero, Comm: "x"}, "only one"},
		{"command and comm", Options{Command: []string{"true"}, Comm: "x"}, "only one"},
		{"comm of 16", Options{Comm: "a-name-longer-15"}, "--comm: "},
		{"comm with NUL", Options{Comm: "a\x00b"}, "--comm: "},
		{"negative timeout", Options{Comm: "x", Timeout: -time.Second}, "--timeout"},
		{"negative settle", Options{Comm: "x", Settle: -time.Second}, "--settle"},
	} {
		err := c.o.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// TestRunValidates: Run refuses what Validate refuses, before it attaches
// or starts anything (no root needed to get the error).
func TestRunValidates(t *testing.T) {
	if _, err := Run(context.Background(), Options{Comm: "x", Cgroup: "/y"}); err == nil || !strings.Contains(err.Error(), "only one") {
		t.Errorf("Run with two targets: %v", err)
	}
}
