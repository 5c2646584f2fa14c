package kmsg

import (
	"fmt"
	"time"
)

// Record is one line of the kernel log. A multi-line /dev/kmsg record
// (Mem-Info) becomes several Records with the same Seq and Stamp.
type Record struct {
	// Seq is the /dev/kmsg sequence number, or the line number in a file.
	Seq   uint64
	Stamp Stamp
	// Level is the syslog level 0-7 when the source says it, else -1.
	Level int
	// Caller is the printk caller ("T1234" for a task, "C1" for a CPU in
	// interrupt context) on kernels built with CONFIG_PRINTK_CALLER, or "".
	// It tells lines of two CPUs apart when their reports interleave.
	Caller string
	// Text is the message, without any prefix.
	Text string
}

// Stamp is when a line was logged: time since boot as the kernel printed
// it, and the wall-clock time when the source gives it or it can be
// derived from the boot time.
type Stamp struct {
	Uptime    time.Duration `json:"uptime_ns,omitempty"`
	HasUptime bool          `json:"has_uptime"`
	Wall      time.Time     `json:"wall,omitzero"`
}

// Known reports whether the stamp says anything at all.
func (s Stamp) Known() bool { return s.HasUptime || !s.Wall.IsZero() }

// String prints the wall time when known, else the time since boot the
// way dmesg does, else "?".
func (s Stamp) String() string {
	switch {
	case !s.Wall.IsZero():
		return s.Wall.Format("2006-01-02 15:04:05")
	case s.HasUptime:
		return fmt.Sprintf("[%d.%06d]", s.Uptime/time.Second, (s.Uptime%time.Second)/time.Microsecond)
	}
	return "?"
}

// Before orders stamps of one log: by wall time when both have it, by
// uptime when both have that.
func (s Stamp) Before(t Stamp) bool {
	if !s.Wall.IsZero() && !t.Wall.IsZero() {
		return s.Wall.Before(t.Wall)
	}
	if s.HasUptime && t.HasUptime {
		return s.Uptime < t.Uptime
	}
	return false
}
