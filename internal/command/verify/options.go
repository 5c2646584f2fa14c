package verify

import (
	"errors"
	"fmt"

	"github.com/memtrace/memtrace/internal/event"
)

// Validate checks the options before anything is attached or started:
// the one place of verify's own rules (one target, a command name the
// kernel can match, no negative time). Whether the target exists is for
// Run to find out. The errors name the flags of `memtrace verify`, which
// set these fields.
func (o Options) Validate() error {
	n := 0
	for _, set := range []bool{len(o.Command) > 0, o.Pid != nil, o.Comm != "", o.Cgroup != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("give a command after --, or one of --comm, --pid, --cgroup")
	case n > 1:
		return errors.New("give only one of a command, --comm, --pid and --cgroup")
	case o.Timeout < 0 || o.Settle < 0 || o.Follow < 0:
		return errors.New("--timeout, --settle and --follow must not be negative")
	case o.Comm != "":
		if err := event.CheckComm(o.Comm); err != nil {
			return fmt.Errorf("--comm: %w", err)
		}
	}
	return nil
}
