package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/decode/cgroup"
	"github.com/memtrace/memtrace/internal/event"
)

// The rules for flag values that more than one command shares live here,
// once each. Every command checks all its flags before it does anything
// privileged, so a mistake in the command line costs nothing on the host
// and always ends the same way: exit 2, one line, usage.

// errStoppedBeforeWork is what a command returns where it would start
// its work (attach probes, start a command, read the host) when
// stopBeforeWork is set.
var errStoppedBeforeWork = errors.New("stopped before work (test)")

// stopBeforeWork is set by tests only: they run every command with values
// that must be accepted, as root, without attaching or starting anything.
var stopBeforeWork bool

// beforeWork is called by every command once its flags are checked, just
// before its work.
func beforeWork() error {
	if stopBeforeWork {
		return errStoppedBeforeWork
	}
	return nil
}

// checkNotEmpty rejects a string flag given explicitly as "": every string
// flag's empty value means "not set", so `--comm ""` (an unset shell
// variable) would silently trace every process instead of one.
func checkNotEmpty(fs *pflag.FlagSet) error {
	var err error
	fs.Visit(func(f *pflag.Flag) {
		if err == nil && f.Value.Type() == "string" && f.Value.String() == "" {
			err = usagef("--%s must not be empty", f.Name)
		}
	})
	return err
}

// checkComm is the --comm rule of every command (event.CheckComm).
func checkComm(comm string) error {
	if err := event.CheckComm(comm); err != nil {
		return usagef("--comm: %v", err)
	}
	return nil
}

// checkPid checks that pid names a running process (a thread group): a
// filter on a pid that does not exist would trace nothing, silently.
func checkPid(pid int64) error {
	if pid <= 0 {
		return usagef("--pid %d: not a process id", pid)
	}
	status, err := os.ReadFile("/proc/" + strconv.FormatInt(pid, 10) + "/status")
	if errors.Is(err, os.ErrNotExist) {
		return usagef("--pid %d: no such process", pid)
	}
	if err != nil {
		return usagef("--pid %d: %v", pid, err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			if tgid, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && tgid != pid {
				return usagef("--pid %d is a thread of process %d: give the process id", pid, tgid)
			}
		}
	}
	return nil
}

// checkCgroup checks that path names a cgroup (v2, or v1 memory) and
// returns its id: a filter on a cgroup that does not exist would trace
// nothing, silently.
func checkCgroup(path string) (uint64, error) {
	id, err := cgroup.ID(path)
	if err != nil {
		return 0, usagef("--cgroup: %v", err)
	}
	return id, nil
}

// checkCommand checks that the command to start can be: "" or a name not
// in $PATH would otherwise fail only after the probes are attached.
func checkCommand(argv []string) error {
	if argv[0] == "" {
		return usagef("the command after -- is empty")
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			err = ee.Err
		}
		return usagef("command %q: %v", argv[0], err)
	}
	return nil
}

// checkListen checks a host:port to listen on, port included: 0 to 65535
// or a service name.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		// net's message quotes the address raw: say it once, quoted.
		return usagef("--listen %q: want host:port, such as 127.0.0.1:9479 or [::1]:9479", addr)
	}
	if port == "" {
		return usagef("--listen %q: no port (0 picks a free one)", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return usagef("--listen %q: port %q is neither a number from 0 to 65535 nor a service name", addr, port)
	}
	return nil
}
