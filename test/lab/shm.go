package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Scenario 2: the second seed's database whose shared memory landed on
// 4 KiB pages. The database-like process (-shm-db, runDB) is started under
// memtrace verify, once with the huge-page pool short (it falls back) and
// once with the pool memtrace hugepages recommends; memtrace hugepages
// reads the workers' page tables while they hold the segment.

// verifyResult is the part of `memtrace verify --json` the lab reads.
type verifyResult struct {
	Verdict    string
	Summary    string
	Findings   []string
	StopReason string `json:"stop_reason"`
	Calls      []struct {
		Pid       int
		Comm      string
		Call      string
		Size      uint64
		FlagNames string `json:"flag_names"`
		Huge, OK  bool
		Errno     string
		Cause     *struct{ Kind, Text, Advice string }
	}
	Fallbacks []struct{ Summary string }
	Warnings  []string
}

// hugepagesResult is the part of `memtrace hugepages --json` the lab reads.
type hugepagesResult struct {
	Processes []struct {
		Pid     int
		Comm    string
		VmPTEKB uint64 `json:"vm_pte_kb"`
	}
	Segments []struct {
		ShmID       int64 `json:"shmid"`
		Size        uint64
		OnHugePages *bool  `json:"on_huge_pages"`
		PageSizeKB  uint64 `json:"page_size_kb"`
		Attachers   []struct{ Pid int }
	} `json:"sysv_segments"`
	Sizing struct {
		NrHugepages uint64 `json:"nr_hugepages"`
	}
	Tables struct {
		ListedKB   uint64 `json:"listed_kb"`
		PerProcess []struct {
			Pid         int
			VmPTEKB     uint64 `json:"vm_pte_kb"`
			SharedBytes uint64 `json:"shared_bytes"`
			AsBasePages uint64 `json:"as_base_pages_bytes"`
			AsHugePages uint64 `json:"as_huge_pages_bytes"`
		} `json:"per_process"`
	} `json:"page_tables"`
}

// shmRun is one start of the database with one pool size.
type shmRun struct {
	name, tag  string
	pool       uint64 // vm.nr_hugepages during the run
	verify     verifyResult
	verifyLog  string // verify's standard error: its calls as they happened
	db         dbState
	hp         hugepagesResult
	hpText     string
	segmentGot string // the segment's pages as memtrace hugepages reports them

	// Sums over the workers: VmPTE as memtrace hugepages read it, as the
	// workers read it before attaching, and the seed's arithmetic as
	// memtrace hugepages computed it for their shared mappings.
	measuredKB, baselineKB, touchedKB uint64
	arithBase, arithHuge              uint64 // bytes
}

// scenario2 runs the short-pool start, sizes the pool from memtrace
// hugepages's recommendation, and runs the same start again.
func scenario2(o options, sc sysctls) ([]*shmRun, error) {
	bin := filepath.Join(o.out, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the lab's binary: %w", err)
	}
	// Named links, so the processes are named as a database's would
	// be in every listing (the command name comes from the path run).
	for _, n := range []string{"shm-db", "shm-worker"} {
		os.Remove(filepath.Join(bin, n))
		if err := os.Symlink(self, filepath.Join(bin, n)); err != nil {
			return nil, err
		}
	}
	segPages := o.shmMB / 2 // 2 MiB huge pages
	short := &shmRun{name: "pool short", tag: "short", pool: segPages / 4}
	if err := sc.set("vm.nr_hugepages", strconv.FormatUint(short.pool, 10)); err != nil {
		return nil, err
	}
	if err := startDB(o, short, 0x6c616201); err != nil {
		return nil, err
	}
	sized := &shmRun{name: "pool sized by memtrace hugepages", tag: "sized", pool: short.hp.Sizing.NrHugepages}
	if sized.pool < segPages {
		return []*shmRun{short}, fmt.Errorf("memtrace hugepages recommended vm.nr_hugepages=%d for a %d MiB segment", sized.pool, o.shmMB)
	}
	if err := sc.set("vm.nr_hugepages", strconv.FormatUint(sized.pool, 10)); err != nil {
		return nil, err
	}
	if got := strings.TrimSpace(readFile("/proc/sys/vm/nr_hugepages")); got != strconv.FormatUint(sized.pool, 10) {
		return []*shmRun{short}, fmt.Errorf("the kernel made %s of the %d huge pages asked for: not enough contiguous free memory", got, sized.pool)
	}
	if err := startDB(o, sized, 0x6c616202); err != nil {
		return []*shmRun{short}, err
	}
	// Scenario 1 fragments what this pool would otherwise keep.
	return []*shmRun{short, sized}, sc.set("vm.nr_hugepages", "0")
}

// startDB runs the database under memtrace verify, reads the host with
// memtrace hugepages once every worker has touched the segment, then
// stops the database.
func startDB(o options, r *shmRun, key int) error {
	bin := filepath.Join(o.out, "bin")
	ready := filepath.Join(o.out, "shm-"+r.tag+".ready")
	os.Remove(ready)
	vlog, err := os.Create(filepath.Join(o.out, "verify-"+r.tag+".log"))
	if err != nil {
		return err
	}
	defer vlog.Close()
	vout := filepath.Join(o.out, "verify-"+r.tag+".json")
	vf, err := os.Create(vout)
	if err != nil {
		return err
	}
	defer vf.Close()
	v := exec.Command(o.memtrace, "verify", "--json", "--settle", "5s", "--timeout", "3m", "--",
		filepath.Join(bin, "shm-db"), "-shm-db", "-shm-key", strconv.Itoa(key), "-shm-mb", strconv.FormatUint(o.shmMB, 10),
		"-shm-workers", strconv.Itoa(o.workers), "-shm-worker-bin", filepath.Join(bin, "shm-worker"), "-shm-ready", ready)
	v.Stdout, v.Stderr, v.Env = vf, vlog, smallGo
	v.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Printf("lab: scenario 2, %s: vm.nr_hugepages=%d, %s\n", r.name, r.pool, strings.Join(v.Args, " "))
	err = v.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return fmt.Errorf("memtrace verify: %v (its output: %s)", err, vlog.Name())
	}
	b, err := os.ReadFile(vout)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &r.verify); err != nil {
		return fmt.Errorf("decoding %s: %w", vout, err)
	}
	r.verifyLog = readFile(vlog.Name())
	// verify gives its verdict once the calls settled; the workers may
	// still be touching the segment.
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if b, err := os.ReadFile(ready); err == nil && json.Unmarshal(b, &r.db) == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the database did not report its workers within 3 minutes (verify stopped: %s; see %s)", r.verify.StopReason, vlog.Name())
		}
	}
	defer stopDB(r.db.Pid)
	if len(r.db.Problems) > 0 || len(r.db.Workers) != o.workers {
		return fmt.Errorf("the database's workers: %d of %d reported; %s", len(r.db.Workers), o.workers, strings.Join(r.db.Problems, "; "))
	}
	out, err := exec.Command(o.memtrace, "hugepages").CombinedOutput()
	if err != nil {
		return fmt.Errorf("memtrace hugepages: %v: %s", err, out)
	}
	r.hpText = string(out)
	os.WriteFile(filepath.Join(o.out, "hugepages-"+r.tag+".txt"), out, 0o644)
	out, err = exec.Command(o.memtrace, "hugepages", "--json").Output()
	if err != nil {
		return fmt.Errorf("memtrace hugepages --json: %w", err)
	}
	os.WriteFile(filepath.Join(o.out, "hugepages-"+r.tag+".json"), out, 0o644)
	if err := json.Unmarshal(out, &r.hp); err != nil {
		return fmt.Errorf("decoding memtrace hugepages --json: %w", err)
	}
	r.sum()
	return nil
}

// sum adds up the workers' page tables as memtrace hugepages reported them.
func (r *shmRun) sum() {
	workers := map[int]bool{}
	for _, w := range r.db.Workers {
		workers[w.Pid] = true
		r.baselineKB += w.BaselineKB
		r.touchedKB += w.TouchedKB
	}
	for _, p := range r.hp.Tables.PerProcess {
		if workers[p.Pid] {
			r.measuredKB += p.VmPTEKB
			r.arithBase += p.AsBasePages
			r.arithHuge += p.AsHugePages
		}
	}
	r.segmentGot = "not listed"
	for _, s := range r.hp.Segments {
		if s.ShmID != int64(r.db.ShmID) {
			continue
		}
		switch {
		case s.OnHugePages == nil:
			r.segmentGot = "unknown"
		case *s.OnHugePages:
			r.segmentGot = fmt.Sprintf("on huge pages (%s), %d attached", pageSize(s.PageSizeKB), len(s.Attachers))
		default:
			r.segmentGot = fmt.Sprintf("not on huge pages (%s), %d attached", pageSize(s.PageSizeKB), len(s.Attachers))
		}
	}
}

// stopDB ends the database (the lab is its subreaper once verify exited)
// and waits for it: its workers exit and the segment is removed.
func stopDB(pid int) {
	if pid <= 0 {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		<-done
	}
}

// pageTableTolerance is how far the measured page tables of the workers
// on 4 KiB pages (less what each had before attaching) may be from the
// seed's arithmetic: one 8-byte entry per 4 KiB page and process. What the
// arithmetic leaves out is the upper levels (a page-middle directory, at
// most an upper one, per process: 4-8 KiB against 256 KiB of entries for
// 128 MiB) and one more page of entries when the segment is not 2 MiB
// aligned (shmat aligns to 4 KiB); the Go runtime's own growth between the
// workers' reading and memtrace's is a few KiB at most.
const pageTableTolerance = 0.10

// hugeSlackKB is what one worker's page tables may grow by when the
// segment is on 2 MiB pages: the entries (8 bytes each, 512 B for 128 MiB)
// and the same upper levels and runtime growth as above.
const hugeSlackKB = 16

// checkShm is scenario 2's test: verify's verdicts, and memtrace
// hugepages's measured page tables against the seed's arithmetic.
func checkShm(runs []*shmRun, o options) []string {
	var bad []string
	if len(runs) != 2 {
		return []string{fmt.Sprintf("scenario 2 ran %d of its 2 starts", len(runs))}
	}
	short, sized := runs[0], runs[1]
	if short.verify.Verdict != "fell_back" {
		bad = append(bad, fmt.Sprintf("pool short: memtrace verify said %q, want fell_back", short.verify.Verdict))
	}
	if sized.verify.Verdict != "on_huge_pages" {
		bad = append(bad, fmt.Sprintf("pool sized: memtrace verify said %q, want on_huge_pages", sized.verify.Verdict))
	}
	seed := uint64(o.workers) * (o.shmMB << 20) / 4096 * 8
	if short.arithBase != seed {
		bad = append(bad, fmt.Sprintf("memtrace hugepages computed %d bytes of page tables on 4 KiB pages for the workers, the seed's arithmetic %d", short.arithBase, seed))
	}
	grown := int64(short.measuredKB) - int64(short.baselineKB)
	if d := float64(grown<<10) - float64(seed); d < -pageTableTolerance*float64(seed) || d > pageTableTolerance*float64(seed) {
		bad = append(bad, fmt.Sprintf("pool short: the workers' page tables grew by %d KiB, the arithmetic says %d KiB (tolerance %.0f%%)", grown, seed>>10, 100*pageTableTolerance))
	}
	if g := int64(sized.measuredKB) - int64(sized.baselineKB); g > int64(o.workers*hugeSlackKB) {
		bad = append(bad, fmt.Sprintf("pool sized: the workers' page tables grew by %d KiB on huge pages, more than %d KiB", g, o.workers*hugeSlackKB))
	}
	saved := int64(short.measuredKB) - int64(sized.measuredKB)
	if want := (1 - pageTableTolerance) * float64(seed-sized.arithHuge) / 1024; float64(saved) < want {
		bad = append(bad, fmt.Sprintf("huge pages saved %d KiB of page tables, less than %.0f KiB", saved, want))
	}
	return bad
}

func pageSize(kb uint64) string {
	if kb >= 1024 && kb%1024 == 0 {
		return fmt.Sprintf("%d MiB", kb>>10)
	}
	return fmt.Sprintf("%d KiB", kb)
}
