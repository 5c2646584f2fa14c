package provoke

import (
	"encoding/json"
	"errors"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func opHuge(w *worker, raw json.RawMessage) (any, error) {
	var a hugeArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	var calls []Call
	add := func(name string, length, flags, ret uintptr, err error) syscall.Errno {
		c := Call{Name: name, Length: uint64(length), Flags: uint64(flags), Ret: uint64(ret)}
		var e syscall.Errno
		if errors.As(err, &e) {
			c.Errno = e
		} else if err != nil {
			c.Errno = unix.EIO // not a syscall error; should not happen
		}
		calls = append(calls, c)
		return c.Errno
	}
	length := uintptr(a.Length)
	for i := 0; i < a.Repeat; i++ {
		switch a.Op {
		case ShmGet, ShmAttach:
			flags := uintptr(unix.IPC_CREAT | 0o600 | shmHugeTLB | a.SizeBits)
			id, _, e := unix.Syscall(unix.SYS_SHMGET, unix.IPC_PRIVATE, length, flags)
			if add("shmget", length, flags, id, errnoOrNil(e)) != 0 {
				continue
			}
			if a.Op == ShmAttach {
				b, err := unix.SysvShmAttach(int(id), 0, 0)
				if add("shmat", length, 0, addr(b), err) == 0 {
					touch(b, a.PageSize)
					add("shmdt", length, 0, 0, unix.SysvShmDetach(b))
				}
			}
			_, _, e = unix.Syscall(unix.SYS_SHMCTL, id, unix.IPC_RMID, 0)
			add("shmctl(IPC_RMID)", 0, 0, id, errnoOrNil(e))
		case Mmap, MmapFallback:
			flags := unix.MAP_SHARED | unix.MAP_ANONYMOUS | mapHugeTLB | a.SizeBits
			b, err := unix.Mmap(-1, 0, a.Length, unix.PROT_READ|unix.PROT_WRITE, flags)
			e := add("mmap", length, uintptr(flags), addr(b), err)
			if e == unix.ENOMEM && a.Op == MmapFallback {
				flags = unix.MAP_SHARED | unix.MAP_ANONYMOUS
				b, err = unix.Mmap(-1, 0, a.Length, unix.PROT_READ|unix.PROT_WRITE, flags)
				e = add("mmap", length, uintptr(flags), addr(b), err)
			}
			if e == 0 {
				touch(b, a.PageSize)
				add("munmap", length, 0, addr(b), unix.Munmap(b))
			}
		}
	}
	return hugeResult{Calls: calls}, nil
}

func errnoOrNil(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func addr(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

// touch writes to every huge page, so the kernel allocates them.
func touch(b []byte, step int) {
	for i := 0; i < len(b); i += step {
		b[i] = 1
	}
}
