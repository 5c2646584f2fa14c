package event

import (
	"errors"
	"fmt"
	"strings"
)

// Source is a started tracing session as the commands and outputs use it.
// internal/probe/loader's Session is one; the commands receive it from a
// start function (cmd/memtrace calls loader.Start), so that no command or
// output imports the loader, and tests can hand them a fake.
type Source interface {
	// Hooks reports, per requested signal, the hook in use and why others
	// were not.
	Hooks() []HookStatus
	// Decoding says where names came from.
	Decoding() Decoding
	// Events delivers named events until the session is stopped and the
	// ring buffers are drained; then the channel is closed.
	Events() <-chan Event
	// Aggregates returns a complete read of a family's in-kernel
	// aggregates, named: a slice of the family's row type
	// ([]AllocAggregate for alloc), or nil when the family keeps none or
	// is not attached. The outputs read it through the family's view
	// (internal/present/view).
	Aggregates(sig Signal) (any, error)
	// Stats returns every attached signal's counters.
	Stats() (map[Signal]Stats, error)
	// DecodeErrors counts records that could not be decoded.
	DecodeErrors() uint64
	// ForgetPids deletes the in-kernel aggregates of these processes.
	ForgetPids(pids []uint32) error
	// Stop detaches the programs and lets Events drain; Close frees
	// everything.
	Stop() error
	Close() error
}

// Naming selects what a session names beyond the tables of the running
// kernel (GFP flags, migratetypes, errno and syscall flags), which it
// always builds.
type Naming struct {
	// Stacks reads the frames of captured kernel stacks; Symbols also
	// symbolizes them with /proc/kallsyms (about 4 MB and 80 ms, loaded
	// in the background once the probes are attached). Without Symbols
	// frames are hex addresses.
	Stacks, Symbols bool
	// Tasks adds what the host knows of a task (cgroup path, container);
	// nil leaves them empty. container.TaskNamer is this host's.
	Tasks func(*Task)
}

// Decoding says where a session's names came from, and what could not be
// named.
type Decoding struct {
	GFPSource         string
	MigratetypeSource string
	// Symbols is where stacks are symbolized from, "unavailable" when
	// /proc/kallsyms could not be read, "" when not asked for.
	Symbols string
	// ContextSource says where the programs read preempt_count, or why
	// they cannot ("unavailable: …").
	ContextSource string
	Warnings      []string
}

// Attached reports whether hooks attach sig.
func Attached(hooks []HookStatus, sig Signal) bool {
	for _, h := range hooks {
		if h.Signal == sig && h.Attached {
			return true
		}
	}
	return false
}

// TaskCommLen is the kernel's TASK_COMM_LEN less its terminating NUL: the
// longest command name a task can have.
const TaskCommLen = 15

// CheckComm reports why comm can never match a task's command name: the
// one rule for every --comm filter.
func CheckComm(comm string) error {
	switch {
	case comm == "":
		return errors.New("empty command name")
	case len(comm) > TaskCommLen:
		return fmt.Errorf("%q is longer than the kernel's %d-character command names", comm, TaskCommLen)
	case strings.IndexByte(comm, 0) >= 0:
		return fmt.Errorf("%q holds a NUL byte, which ends a kernel command name", comm)
	}
	return nil
}
