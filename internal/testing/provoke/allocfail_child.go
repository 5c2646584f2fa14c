package provoke

import (
	"encoding/json"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Between joining the limited cgroup and leaving it, the worker makes raw
// system calls only and touches no new memory: any kernel allocation it
// causes is charged to the full cgroup, and a page fault needing a new page
// table would block in the memcg OOM wait (cgroup v1, OOM killer off).
//
// While the cgroup is full, the worker must not be preempted either. The
// runtime preempts a goroutine that runs 10 ms without a call (the loops
// below, slow under TCG) with SIGURG, and the signal handler runs on the
// thread's signal stack, whose pages this thread may never have touched:
// before about 5.11 the whole child is in the cgroup (see PipeResize), so
// that first touch waited for memory forever and the child timed out (CI,
// 5.10 guest). So the full window blocks SIGURG and calls only nosplit
// functions, which have no preemption check; a preemption asked for in it
// happens after the pipes are closed and the cgroup has room again.

func opPipeFail(w *worker, raw json.RawMessage) (any, error) {
	var a failArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	fds, err := makePipes(a.Pipes)
	defer closeAll(fds)
	if err != nil {
		return nil, err
	}
	var res failResult
	growStack()
	if err := joinCgroup(a.Join, a.Thread); err != nil {
		return nil, err
	}
	mask := blockPreemption()
	for i := 0; res.Failed < a.Want && i < len(fds); {
		res.Attempts++
		_, _, e := unix.RawSyscall(unix.SYS_FCNTL, uintptr(fds[i+1]), unix.F_SETPIPE_SZ, uintptr(a.PipeSize))
		switch e {
		case 0:
			res.Succeeded++ // not full yet: this resize filled the cgroup further
			i += 2
		case unix.ENOMEM:
			res.Failed++ // retry the same pipe: the cgroup stays full
		default:
			res.Errno, res.Call = int(e), "fcntl(F_SETPIPE_SZ)"
			i = len(fds)
		}
	}
	closeAll(fds) // uncharges the pipe_buffer arrays
	fds = nil
	restoreSigmask(mask)
	if err := joinCgroup(a.Home, a.Thread); err != nil {
		return nil, err
	}
	res.NotFull = res.Failed == 0 && res.Errno == 0
	return res, nil
}

func opBPFFail(w *worker, raw json.RawMessage) (any, error) {
	var a failArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	attr := bpfArrayAttr(a.MapSize)
	var res failResult
	growStack()
	if err := joinCgroup(a.Join, a.Thread); err != nil {
		return nil, err
	}
	// A map that fits means the limit was not reached; give up after a few.
	for res.Failed < a.Want && res.Succeeded < 3 {
		res.Attempts++
		fd, _, e := unix.RawSyscall(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
		if e == 0 {
			res.Succeeded++
			rawClose(int(fd))
			continue
		}
		if e != unix.ENOMEM {
			res.Errno, res.Call = int(e), "bpf(BPF_MAP_CREATE)"
			break
		}
		res.Failed++
	}
	if err := joinCgroup(a.Home, a.Thread); err != nil {
		return nil, err
	}
	return res, nil
}

// bpfArrayAttr encodes union bpf_attr for BPF_MAP_CREATE of an array map
// of about size bytes: map_type, key_size, value_size, max_entries,
// map_flags, inner_map_fd, numa_node, map_name[16].
func bpfArrayAttr(size int) []byte {
	attr := make([]byte, 48)
	put := func(off int, v uint32) { *(*uint32)(unsafe.Pointer(&attr[off])) = v }
	put(0, unix.BPF_MAP_TYPE_ARRAY)
	put(4, 4)    // key_size
	put(8, 4096) // value_size
	put(12, uint32(size/4096))
	copy(attr[28:44], "mt_allocfail")
	return attr
}

// opWarnFail fills the memory cgroup with pipe buffers, then makes one
// accounted allocation large enough to fall back to vmalloc, whose order-0
// pages then fail their charge and reach warn_alloc ("vmalloc error").
// Two such allocations are known: growing the fd table (alloc_fdtable,
// kvmalloc_array(GFP_KERNEL_ACCOUNT) since 4.5) by dup2 to a high fd, and
// a 64 KiB user.* xattr on a memfd (simple_xattr_alloc, tmpfs user xattrs
// from 6.6). a.WarnCall picks one: "fdtable" or "xattr". The third,
// "oversize", needs no cgroup: an fd table larger than the machine's memory.
func opWarnFail(w *worker, raw json.RawMessage) (any, error) {
	var a failArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	call, err := prepareWarnCall(a)
	if err != nil {
		return nil, err
	}
	defer call.close()
	var res failResult
	if a.WarnCall == "oversize" {
		// No memory cgroup: the request itself is too large.
		res.Attempts++
		e := call.do()
		res.XattrErrno = int(e)
		if e == unix.ENOMEM {
			res.Failed++
		}
		return res, nil
	}
	fds, err := makePipes(a.Pipes)
	defer closeAll(fds)
	if err != nil {
		return nil, err
	}
	growStack()
	if err := joinCgroup(a.Join, a.Thread); err != nil {
		return nil, err
	}
	full, last := false, -1
	for i := 0; !full && i < len(fds); i += 2 {
		_, _, e := unix.RawSyscall(unix.SYS_FCNTL, uintptr(fds[i+1]), unix.F_SETPIPE_SZ, uintptr(a.PipeSize))
		switch e {
		case 0:
			res.Succeeded++
			last = i
		case unix.ENOMEM:
			full = true
		default:
			res.Errno, res.Call = int(e), "fcntl(F_SETPIPE_SZ)"
			i = len(fds)
		}
	}
	if full {
		// A few pages of headroom: the small allocations before the large
		// one (on 6.1, alloc_fdtable's struct fdtable) must succeed, so
		// the failure comes from the vmalloc pages, which warn. Freeing
		// the last resized pipe's buffer array gives one order-2 block.
		if last >= 0 {
			rawClose(fds[last])
			rawClose(fds[last+1])
			fds[last], fds[last+1] = -1, -1
		}
		res.Attempts++
		e := call.do()
		res.XattrErrno = int(e)
		if e == unix.ENOMEM {
			res.Failed++
		}
	}
	closeAll(fds)
	fds = nil
	if err := joinCgroup(a.Home, a.Thread); err != nil {
		return nil, err
	}
	if !full && res.Errno == 0 {
		return nil, fmt.Errorf("memory cgroup not full after %d pipe resizes", res.Succeeded)
	}
	return res, nil
}

// warnCall is the accounted allocation opWarnFail makes in a full cgroup.
type warnCall struct {
	do    func() unix.Errno
	close func()
}

func prepareWarnCall(a failArgs) (warnCall, error) {
	switch a.WarnCall {
	case "fdtable":
		// The fd array for RLIMIT_NOFILE descriptors (8 bytes each,
		// rounded up to a power of two) is far above what kmalloc serves
		// without reclaim. The soft limit may rise to the hard one freely.
		var lim unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return warnCall{}, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
		}
		lim.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return warnCall{}, fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
		}
		target := int(min(lim.Max, 1<<20) - 1)
		return warnCall{
			do: func() unix.Errno {
				// dup3, not dup2: arm64 has no dup2 (both are ksys_dup3).
				if _, _, e := unix.RawSyscall(unix.SYS_DUP3, 0, uintptr(target), 0); e != 0 {
					return e
				}
				rawClose(target) // the table stays grown: a later call would not allocate
				return 0
			},
			close: func() {},
		}, nil
	case "oversize":
		// An fd table of a.Fds descriptors (fs.nr_open raised to it by
		// the parent) is a kvmalloc of 8*a.Fds bytes, more than the
		// machine's memory: __vmalloc_node_range refuses it with
		// "vmalloc error: size N, exceeds total pages" before allocating
		// anything, with the caller's GFP_KERNEL_ACCOUNT.
		lim := unix.Rlimit{Cur: uint64(a.Fds), Max: uint64(a.Fds)}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return warnCall{}, fmt.Errorf("raising RLIMIT_NOFILE to %d: %w", a.Fds, err)
		}
		return warnCall{
			do: func() unix.Errno {
				if _, _, e := unix.RawSyscall(unix.SYS_DUP3, 0, uintptr(a.Fds-1), 0); e != 0 {
					return e
				}
				rawClose(a.Fds - 1)
				return 0
			},
			close: func() {},
		}, nil
	case "xattr":
		mfd, err := unix.MemfdCreate("memtrace-provoke", unix.MFD_CLOEXEC)
		if err != nil {
			return warnCall{}, fmt.Errorf("creating memfd: %w", err)
		}
		name, _ := unix.BytePtrFromString("user.memtrace")
		// Touch the value now: the kernel copies it in, and faulting its
		// pages in while the cgroup is full would need page tables charged
		// to it, turning the fault into EFAULT.
		value := make([]byte, a.XattrSize)
		for i := range value {
			value[i] = 'm'
		}
		return warnCall{
			do: func() unix.Errno {
				_, _, e := unix.RawSyscall6(unix.SYS_FSETXATTR, uintptr(mfd), uintptr(unsafe.Pointer(name)),
					uintptr(unsafe.Pointer(&value[0])), uintptr(len(value)), 0, 0)
				return e
			},
			close: func() { unix.Close(mfd) },
		}, nil
	}
	return warnCall{}, fmt.Errorf("unknown warn_alloc call %q", a.WarnCall)
}

// makePipes returns n pipes as [r0, w0, r1, w1, ...].
func makePipes(n int) ([]int, error) {
	fds := make([]int, 0, 2*n)
	for i := 0; i < n; i++ {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
			return fds, fmt.Errorf("creating pipe %d: %w", i, err)
		}
		fds = append(fds, p[0], p[1])
	}
	return fds, nil
}

// The calls made while the cgroup is full are raw system calls: with a
// plain one the scheduler may hand the worker's P to another thread, and a
// new thread faulting in its stack in the full cgroup waits there for
// memory forever (cgroup v1, OOM killer disabled). Before about 5.11 the
// kernel charges every thread's allocations to one cgroup (the mm owner's),
// so the whole child is in it and this hung the child.
//
//go:nosplit
func rawClose(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

//go:nosplit
func closeAll(fds []int) {
	for _, fd := range fds {
		rawClose(fd)
	}
}

// blockPreemption blocks SIGURG, the runtime's preemption signal, on the
// calling thread and returns the signal mask to restore.
//
//go:nosplit
func blockPreemption() (old uint64) {
	set := uint64(1) << (unix.SIGURG - 1)
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_BLOCK, uintptr(unsafe.Pointer(&set)), uintptr(unsafe.Pointer(&old)), 8, 0, 0)
	return old
}

// restoreSigmask puts back the mask blockPreemption returned; a pending
// SIGURG is delivered then.
//
//go:nosplit
func restoreSigmask(old uint64) {
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
}

// growStack grows the goroutine stack ahead of time, so that no stack
// copy (a fresh allocation) happens while the cgroup is full. With the
// garbage collector off, the stack is never shrunk back.
//
//go:noinline
func growStack() byte {
	var pad [64 << 10]byte
	pad[len(pad)-1] = 1
	return pad[len(pad)-1] + pad[0]
}

func errnoErr(e int) error {
	if e == 0 {
		return nil
	}
	return syscall.Errno(e)
}
