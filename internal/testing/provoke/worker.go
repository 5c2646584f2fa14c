package provoke

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"unsafe"

	"golang.org/x/sys/unix"
)

// init turns the process into a provoke child when childEnv is set. It runs
// in any binary that imports this package (test/provoke, test binaries),
// so the parent can simply re-exec itself.
func init() {
	comm, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	os.Unsetenv(childEnv)
	os.Exit(childMain(comm))
}

// op is a request handler; it runs on the worker thread.
type op func(w *worker, args json.RawMessage) (any, error)

// ops lists every request the child understands. It is built on first
// use, not in an init func, so that it is complete whatever the init order.
func ops() map[string]op {
	return map[string]op{
		"hello":     opHello,
		"pipefail":  opPipeFail,
		"bpffail":   opBPFFail,
		"warnfail":  opWarnFail,
		"fill":      opFill,
		"release":   opRelease,
		"huge":      opHuge,
		"loopback":  opLoopback,
		"readfile":  opReadFile,
		"setpool":   opSetPool,
		"hugefault": opHugeFault,
	}
}

func opHello(w *worker, _ json.RawMessage) (any, error) {
	return helloResult{Pid: os.Getpid(), Tid: unix.Gettid(), Comm: w.comm}, nil
}

// worker owns the one OS thread that makes all requests, so that every
// event the child causes carries the same tid and comm.
type worker struct {
	comm  string
	jobs  chan func()
	state map[string]func() // release funcs of held resources, by op
}

func childMain(comm string) int {
	// No garbage collection: nothing may allocate or move behind our back
	// while a cgroup is held at its limit.
	debug.SetGCPercent(-1)
	setComm(comm) // main thread: /proc/<pid>/comm
	w := &worker{comm: comm, jobs: make(chan func()), state: map[string]func(){}}
	go w.loop()
	handlers := ops()

	dec := json.NewDecoder(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for {
		var req struct {
			Op   string          `json:"op"`
			Args json.RawMessage `json:"args"`
		}
		if err := dec.Decode(&req); err != nil {
			// EOF: the parent is done. Release whatever is still held.
			w.run(func() {
				for _, release := range w.state {
					release()
				}
			})
			return 0
		}
		var rep reply
		handler, ok := handlers[req.Op]
		if !ok {
			rep.Err = fmt.Sprintf("unknown op %q", req.Op)
		} else {
			var res any
			var err error
			w.run(func() { res, err = handler(w, req.Args) })
			if err != nil {
				rep.Err = err.Error()
			} else if rep.Result, err = json.Marshal(res); err != nil {
				rep.Err = err.Error()
			}
		}
		// Replies are written here, never from the worker thread: a pipe
		// write allocates a page, which must not be charged to a cgroup
		// the worker may be holding at its limit.
		if err := enc.Encode(rep); err != nil {
			return 1
		}
	}
}

func (w *worker) loop() {
	runtime.LockOSThread() // never unlocked: the thread is the worker
	setComm(w.comm)
	for job := range w.jobs {
		job()
	}
}

func (w *worker) run(job func()) {
	done := make(chan struct{})
	w.jobs <- func() { job(); close(done) }
	<-done
}

// setComm names the calling thread, like prctl(PR_SET_NAME) in C.
func setComm(comm string) {
	b := make([]byte, 16) // NUL-terminated, at most 15 bytes kept
	copy(b[:15], comm)
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}

// joinCgroup writes the worker's tid (thread) or the pid to a cgroup's
// tasks or cgroup.procs file.
func joinCgroup(file string, thread bool) error {
	id := os.Getpid()
	if thread {
		id = unix.Gettid()
	}
	if err := writeFile(file, fmt.Sprint(id)); err != nil {
		return fmt.Errorf("moving %d to %s: %w", id, file, err)
	}
	return nil
}
