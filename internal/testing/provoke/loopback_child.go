package provoke

import (
	"encoding/json"
	"fmt"

	"golang.org/x/sys/unix"
)

type loopbackArgs struct{ Bytes int }

type loopbackResult struct{ Bytes int }

// opLoopback sends a.Bytes through a TCP connection to itself, all on the
// worker thread with raw system calls (no netpoller thread), non-blocking
// on both ends so that one thread can be sender and receiver.
func opLoopback(w *worker, raw json.RawMessage) (any, error) {
	var a loopbackArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	sock := func() (int, error) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			fds = append(fds, fd)
		}
		return fd, err
	}
	ls, err := sock()
	if err != nil {
		return nil, fmt.Errorf("creating socket: %w", err)
	}
	if err := unix.Bind(ls, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return nil, fmt.Errorf("binding 127.0.0.1: %w", err)
	}
	if err := unix.Listen(ls, 1); err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	addr, err := unix.Getsockname(ls)
	if err != nil {
		return nil, fmt.Errorf("reading the listening address: %w", err)
	}
	cs, err := sock()
	if err != nil {
		return nil, fmt.Errorf("creating socket: %w", err)
	}
	if err := unix.Connect(cs, addr); err != nil {
		return nil, fmt.Errorf("connecting to %v: %w", addr, err)
	}
	as, _, err := unix.Accept4(ls, unix.SOCK_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("accepting: %w", err)
	}
	fds = append(fds, as)
	for _, fd := range []int{cs, as} {
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, fmt.Errorf("setting O_NONBLOCK: %w", err)
		}
	}
	wbuf, rbuf := make([]byte, 64<<10), make([]byte, 64<<10)
	for i := range wbuf {
		wbuf[i] = byte(i)
	}
	sent, got := 0, 0
	for got < a.Bytes {
		progress := false
		if sent < a.Bytes {
			n, err := unix.Write(cs, wbuf[:min(len(wbuf), a.Bytes-sent)])
			if err != nil && err != unix.EAGAIN {
				return nil, fmt.Errorf("sending: %w", err)
			}
			if n > 0 {
				sent, progress = sent+n, true
			}
		}
		n, err := unix.Read(as, rbuf)
		if err != nil && err != unix.EAGAIN {
			return nil, fmt.Errorf("receiving: %w", err)
		}
		if n > 0 {
			got, progress = got+n, true
		}
		if !progress {
			pfd := []unix.PollFd{{Fd: int32(as), Events: unix.POLLIN}, {Fd: int32(cs), Events: unix.POLLOUT}}
			if _, err := unix.Poll(pfd, 100); err != nil && err != unix.EINTR {
				return nil, fmt.Errorf("waiting for the connection: %w", err)
			}
		}
	}
	return loopbackResult{Bytes: got}, nil
}
