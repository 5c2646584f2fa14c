package provoke

import (
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

func hugeFaultFlags(private, noReserve bool) int {
	f := unix.MAP_ANONYMOUS | mapHugeTLB
	if private {
		f |= unix.MAP_PRIVATE
	} else {
		f |= unix.MAP_SHARED
	}
	if noReserve {
		f |= unix.MAP_NORESERVE
	}
	return f
}

func opHugeFault(w *worker, raw json.RawMessage) (any, error) {
	var a hugeFaultArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	b, err := unix.Mmap(-1, 0, a.Length, unix.PROT_READ|unix.PROT_WRITE, a.Flags)
	if err != nil {
		var e unix.Errno
		errors.As(err, &e)
		return hugeFaultResult{Errno: int(e)}, nil
	}
	defer unix.Munmap(b)
	res := hugeFaultResult{Start: uint64(addr(b))}
	if a.Contend {
		defer contendMmapLock()()
	}
	// A SIGBUS in Go code becomes a recoverable panic with this set.
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	for i := 0; i < len(b); i += a.PageSize {
		if !touchOne(b, i) {
			res.Faulted = append(res.Faulted, uint64(addr(b))+uint64(i))
		}
	}
	return res, nil
}

// contendThreads is how many threads contendMmapLock runs: one per CPU
// of the test machine (2) keeps a writer on the lock or waiting for it
// most of the time.
const contendThreads = 2

// contendMmapLock starts threads that map and unmap an anonymous page in
// a loop (each call takes the mmap lock for writing) and returns the
// function that stops them and waits for them to end.
func contendMmapLock() (stop func()) {
	var quit atomic.Bool
	var wg sync.WaitGroup
	for range contendThreads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for !quit.Load() {
				p, _, e := unix.RawSyscall6(unix.SYS_MMAP, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
				if e != 0 {
					return
				}
				unix.RawSyscall(unix.SYS_MUNMAP, p, 4096, 0)
				// Raw system calls never give up the P: on a one-CPU
				// guest (GOMAXPROCS 1) the faulting goroutine waited for
				// async preemption between them and the child timed out.
				runtime.Gosched()
			}
		}()
	}
	return func() {
		quit.Store(true)
		wg.Wait()
	}
}

// touchOne writes b[i] and reports whether it took no fault.
func touchOne(b []byte, i int) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	b[i] = 1
	return true
}

// init runs sigbusMain in a binary started by SigbusCommand.
func init() {
	v, ok := os.LookupEnv(sigbusEnv)
	if !ok {
		return
	}
	os.Unsetenv(sigbusEnv)
	n, mode, _ := strings.Cut(v, ",")
	pages, err := strconv.Atoi(n)
	if err != nil || pages < 1 {
		os.Exit(2)
	}
	os.Exit(sigbusMain(pages, mode != "reserve"))
}

// kSigaction is the kernel's struct sigaction on x86-64 and arm64.
type kSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

func sigbusMain(pages int, noReserve bool) int {
	kb, err := meminfo("Hugepagesize")
	if err != nil {
		return 3
	}
	ps := int(kb * 1024)
	b, err := unix.Mmap(-1, 0, pages*ps, unix.PROT_READ|unix.PROT_WRITE, hugeFaultFlags(false, noReserve))
	if err != nil {
		return 4
	}
	// SIG_DFL for SIGBUS, behind the Go runtime's back: the fault kills
	// the process as it kills a C program.
	act := kSigaction{}
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGBUS), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0); e != 0 {
		return 5
	}
	touch(b, ps)
	return 0
}
