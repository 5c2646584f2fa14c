package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// shmHugetlb is SHM_HUGETLB from linux/shm.h (x/sys/unix does not name it).
const shmHugetlb = 0o4000

// dbState is what the database-like process (-shm-db) writes to its
// ready file once every worker has attached and touched the segment.
type dbState struct {
	Pid      int    `json:"pid"`
	ShmID    int    `json:"shmid"`
	Huge     bool   `json:"huge"`
	HugeErr  string `json:"huge_err,omitempty"`
	Segment  uint64 `json:"segment_bytes"`
	Workers  []workerState
	Problems []string `json:"problems,omitempty"`
}

// workerState is one worker's own view of its page tables: VmPTE just
// before it attached the segment and after it touched every page.
type workerState struct {
	Pid        int    `json:"pid"`
	BaselineKB uint64 `json:"baseline_kb"`
	TouchedKB  uint64 `json:"touched_kb"`
}

// runDB is an Oracle-like start: ask for the segment on huge pages, fall
// back to 4 KiB pages when the pool cannot hold it (as a database with
// use_large_pages=TRUE or huge_pages=try does), start the workers, and
// stay up until SIGTERM or SIGINT. The segment is removed at exit.
func runDB(key int, size uint64, workers int, workerBin, ready string) error {
	st := dbState{Pid: os.Getpid(), Segment: size}
	id, err := unix.SysvShmGet(key, int(size), unix.IPC_CREAT|unix.IPC_EXCL|shmHugetlb|0o600)
	st.Huge = err == nil
	if err != nil {
		st.HugeErr = err.Error()
		fmt.Fprintf(os.Stderr, "shm-db: shmget SHM_HUGETLB of %d MiB: %v: falling back to 4 KiB pages\n", size>>20, err)
		if id, err = unix.SysvShmGet(key, int(size), unix.IPC_CREAT|unix.IPC_EXCL|0o600); err != nil {
			return fmt.Errorf("creating the segment: %w", err)
		}
	}
	st.ShmID = id
	defer unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	// Signals before the workers start: an interrupt while they attach
	// still ends with the segment removed.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	var procs []*exec.Cmd
	var stdins []io.Closer
	defer func() {
		for _, c := range stdins {
			c.Close()
		}
		for _, p := range procs {
			p.Wait()
		}
	}()
	lines := make(chan string, workers)
	for i := 0; i < workers; i++ {
		cmd := exec.Command(workerBin, "-shm-worker", strconv.Itoa(id))
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		in, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting worker %d: %w", i, err)
		}
		procs, stdins = append(procs, cmd), append(stdins, in)
		go func() {
			l, _ := bufio.NewReader(out).ReadString('\n')
			lines <- l
		}()
	}
	for range workers {
		var w workerState
		select {
		case l := <-lines:
			if _, err := fmt.Sscanf(l, "%d %d %d", &w.Pid, &w.BaselineKB, &w.TouchedKB); err != nil {
				st.Problems = append(st.Problems, fmt.Sprintf("a worker reported %q", strings.TrimSpace(l)))
				continue
			}
			st.Workers = append(st.Workers, w)
		case s := <-sig:
			return fmt.Errorf("%v while the workers attached", s)
		}
	}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(ready, b, 0o644); err != nil {
		return err
	}
	<-sig
	return nil
}

// runWorker attaches the segment, writes to every 4 KiB of it (each page
// gets a page-table entry in this process) and reports its VmPTE before
// and after; it holds the segment until its standard input closes.
func runWorker(id int) error {
	before, err := vmPTE()
	if err != nil {
		return err
	}
	b, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		return fmt.Errorf("attaching segment %d: %w", id, err)
	}
	defer unix.SysvShmDetach(b)
	for i := 0; i < len(b); i += 4096 {
		b[i] = byte(i)
	}
	after, err := vmPTE()
	if err != nil {
		return err
	}
	fmt.Printf("%d %d %d\n", os.Getpid(), before, after)
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// vmPTE is this process's page tables in KiB (/proc/self/status).
func vmPTE() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmPTE:"); ok {
			return strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmPTE in /proc/self/status")
}
