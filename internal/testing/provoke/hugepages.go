package provoke

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

const hugepagesDir = "/sys/kernel/mm/hugepages"

var (
	reservedMu sync.Mutex
	reserved   = map[uint64]bool{} // sizes this process holds a reservation for
)

// ReserveHugePages sets the pool of sizeKB huge pages (0: the default size,
// Hugepagesize in /proc/meminfo) to exactly n pages through
// /sys/kernel/mm/hugepages/hugepages-<size>kB/nr_hugepages, and sets
// nr_overcommit_hugepages to 0 so that requests beyond the pool fail
// instead of allocating surplus pages. n = 0 empties the pool, for
// provoking ENOMEM. Pages in use by others count towards n.
//
// It fails, leaving the pool as it was, if the kernel could not provide n
// pages (too little contiguous free memory, typically for 1 GiB pages).
// restore puts both values back; call it also when the test fails
// (t.Cleanup). While a reservation is held, another one for the same size
// waits in other processes and is an error in this one.
func ReserveHugePages(sizeKB uint64, n int) (restore func() error, err error) {
	restore, _, err = reserveHugePages(sizeKB, n, true)
	return restore, err
}

// GrowHugePages is ReserveHugePages that adds to the pool and takes what
// the kernel gives: it asks for more pages than the pool holds when
// locked and returns how many it holds then (at most that many more).
func GrowHugePages(sizeKB uint64, more int) (restore func() error, got int64, err error) {
	return reserveHugePages(sizeKB, more, false)
}

// reserveHugePages sets the pool to n pages (exact) or to n more than it
// holds, as many as the kernel gives (!exact).
func reserveHugePages(sizeKB uint64, n int, exact bool) (restore func() error, got int64, err error) {
	if n < 0 {
		return nil, 0, fmt.Errorf("reserving huge pages: n = %d", n)
	}
	if sizeKB == 0 {
		if sizeKB, err = meminfo("Hugepagesize"); err != nil {
			return nil, 0, fmt.Errorf("reserving huge pages: %w", err)
		}
	}
	dir := filepath.Join(hugepagesDir, fmt.Sprintf("hugepages-%dkB", sizeKB))
	if _, err := os.Stat(dir); err != nil {
		return nil, 0, fmt.Errorf("reserving %d kB huge pages: size not supported by this kernel: %w", sizeKB, err)
	}
	reservedMu.Lock()
	if reserved[sizeKB] {
		reservedMu.Unlock()
		return nil, 0, fmt.Errorf("reserving %d kB huge pages: already reserved by this process; restore first", sizeKB)
	}
	reserved[sizeKB] = true
	reservedMu.Unlock()
	release := func() {
		reservedMu.Lock()
		delete(reserved, sizeKB)
		reservedMu.Unlock()
	}
	unlock, err := lockPool(sizeKB)
	if err != nil {
		release()
		return nil, 0, fmt.Errorf("reserving %d kB huge pages: %w", sizeKB, err)
	}
	p := pool{dir: dir}
	if err := p.read(); err != nil {
		unlock()
		release()
		return nil, 0, err
	}
	undo := func() error {
		err := p.restore()
		unlock()
		release()
		return err
	}
	if !exact {
		n += int(p.nr)
	}
	if got, err = p.set(n, exact); err != nil {
		return nil, 0, fmt.Errorf("reserving %d kB huge pages: %w", sizeKB, errors.Join(err, undo()))
	}
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() { err = undo() })
		return err
	}, got, nil
}

// pool is one size's hugepage pool and the values found there.
type pool struct {
	dir               string
	nr, overcommit    int64
	touchedOvercommit bool
	touchedNr         bool
}

func (p *pool) read() error {
	var err error
	if p.nr, err = readInt(filepath.Join(p.dir, "nr_hugepages")); err != nil {
		return fmt.Errorf("reading hugepage pool: %w", err)
	}
	if p.overcommit, err = readInt(filepath.Join(p.dir, "nr_overcommit_hugepages")); err != nil {
		return fmt.Errorf("reading hugepage pool: %w", err)
	}
	return nil
}

func (p *pool) set(n int, exact bool) (int64, error) {
	if p.overcommit != 0 {
		p.touchedOvercommit = true
		if err := writeFile(filepath.Join(p.dir, "nr_overcommit_hugepages"), "0"); err != nil {
			return 0, fmt.Errorf("setting nr_overcommit_hugepages: %w", err)
		}
	}
	p.touchedNr = true
	if err := writeFile(filepath.Join(p.dir, "nr_hugepages"), strconv.Itoa(n)); err != nil {
		return 0, fmt.Errorf("setting nr_hugepages to %d: %w", n, err)
	}
	got, err := readInt(filepath.Join(p.dir, "nr_hugepages"))
	if err != nil {
		return 0, fmt.Errorf("reading nr_hugepages: %w", err)
	}
	if exact && got != int64(n) {
		return 0, fmt.Errorf("the kernel provided %d huge pages, want %d", got, n)
	}
	return got, nil
}

func (p *pool) restore() error {
	var errs []error
	if p.touchedNr {
		if err := writeFile(filepath.Join(p.dir, "nr_hugepages"), strconv.FormatInt(p.nr, 10)); err != nil {
			errs = append(errs, fmt.Errorf("restoring nr_hugepages to %d: %w", p.nr, err))
		}
	}
	if p.touchedOvercommit {
		if err := writeFile(filepath.Join(p.dir, "nr_overcommit_hugepages"), strconv.FormatInt(p.overcommit, 10)); err != nil {
			errs = append(errs, fmt.Errorf("restoring nr_overcommit_hugepages to %d: %w", p.overcommit, err))
		}
	}
	return errors.Join(errs...)
}

// HugePageSizes lists the huge page sizes (kB) the kernel supports.
func HugePageSizes() ([]uint64, error) {
	entries, err := os.ReadDir(hugepagesDir)
	if err != nil {
		return nil, fmt.Errorf("listing huge page sizes: %w", err)
	}
	var sizes []uint64
	for _, e := range entries {
		var kb uint64
		if _, err := fmt.Sscanf(e.Name(), "hugepages-%dkB", &kb); err == nil {
			sizes = append(sizes, kb)
		}
	}
	return sizes, nil
}
