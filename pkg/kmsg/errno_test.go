package kmsg

import "golang.org/x/sys/unix"

var (
	errEPIPE  error = unix.EPIPE
	errEAGAIN error = unix.EAGAIN
)
