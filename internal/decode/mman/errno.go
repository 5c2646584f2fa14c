package mman

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrnoName returns the symbolic name of an errno ("ENOMEM"). Kernel
// return values are negative errnos, so -12 is ENOMEM too. Unknown numbers
// read "errno 1234".
func ErrnoName(errno int) string {
	n := errno
	if n < 0 {
		n = -n
	}
	if n > 0 {
		if name := unix.ErrnoName(syscall.Errno(n)); name != "" {
			return name
		}
	}
	return fmt.Sprintf("errno %d", errno)
}
