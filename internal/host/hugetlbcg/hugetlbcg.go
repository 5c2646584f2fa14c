// Package hugetlbcg reads the hugetlb cgroup controller: the limits on huge
// pages a cgroup may fault in (v1 hugetlb.<size>.limit_in_bytes, v2
// hugetlb.<size>.max) and reserve (.rsvd.limit_in_bytes, .rsvd.max), with
// usage and refused charges, in either hierarchy. A fault limit counts
// faulted pages, not reservations, so a mapping that reserved its pages
// at mmap can still die of SIGBUS at first touch; a reservation limit
// makes mmap and shmget fail with ENOMEM although the pool has pages.
package hugetlbcg

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/memtrace/memtrace/internal/decode/mounts"
)

// Unlimited is what v1 prints for no limit (PAGE_COUNTER_MAX pages of 4
// KiB); anything this large is no limit.
const unlimitedFrom = uint64(1) << 62

// Hierarchy is one mounted hierarchy with the hugetlb controller.
type Hierarchy struct {
	Root string // mount point
	V2   bool
}

// SizeName is the kernel's name of a huge page size in the controller's
// file names: "2MB", "1GB", "64KB" (mm/hugetlb_cgroup.c, mem_fmt).
func SizeName(pageSize uint64) string {
	switch {
	case pageSize >= 1<<30:
		return strconv.FormatUint(pageSize>>30, 10) + "GB"
	case pageSize >= 1<<20:
		return strconv.FormatUint(pageSize>>20, 10) + "MB"
	}
	return strconv.FormatUint(pageSize>>10, 10) + "KB"
}

// Limits are one cgroup's hugetlb counters for one page size, in bytes;
// a nil limit is no limit. Reservation counters are nil on kernels before
// 5.7 (and in the root of v2, which has no files).
type Limits struct {
	Path     string // in its hierarchy: "/", "/system.slice/db.service"
	V2       bool
	PageSize uint64
	Usage    uint64
	Limit    *uint64
	// RsvdUsage and RsvdLimit count reservations (and faults without one).
	RsvdUsage *uint64
	RsvdLimit *uint64
	// Failures counts refused fault charges: v2's hugetlb.<size>.events
	// "max", v1's failcnt.
	Failures *uint64
	// LimitFile and RsvdLimitFile name the limits' files.
	LimitFile, RsvdLimitFile string
}

// Refuses reports whether a fault charge of n bytes would exceed the limit.
func (l Limits) Refuses(n uint64) bool { return l.Limit != nil && l.Usage+n > *l.Limit }

// RefusesReservation reports whether reserving n bytes would exceed the
// reservation limit.
func (l Limits) RefusesReservation(n uint64) bool {
	return l.RsvdLimit != nil && l.RsvdUsage != nil && *l.RsvdUsage+n > *l.RsvdLimit
}

// Read reads dir's counters for pageSize. It fails when the cgroup has no
// hugetlb files (the controller is not enabled there, or v2's root).
func Read(h Hierarchy, path string, pageSize uint64) (Limits, error) {
	dir := filepath.Join(h.Root, path)
	pre := "hugetlb." + SizeName(pageSize) + "."
	l := Limits{Path: path, V2: h.V2, PageSize: pageSize}
	var err error
	if h.V2 {
		l.LimitFile, l.RsvdLimitFile = pre+"max", pre+"rsvd.max"
		if l.Usage, err = readNumber(filepath.Join(dir, pre+"current")); err != nil {
			return l, err
		}
		if l.Limit, err = readLimit(filepath.Join(dir, l.LimitFile)); err != nil {
			return l, err
		}
		l.RsvdUsage = optional(filepath.Join(dir, pre+"rsvd.current"))
		l.RsvdLimit, _ = readLimit(filepath.Join(dir, l.RsvdLimitFile))
		if l.RsvdLimit == nil && l.RsvdUsage == nil {
			l.RsvdLimitFile = ""
		}
		if n, err := readKey(filepath.Join(dir, pre+"events"), "max"); err == nil {
			l.Failures = &n
		}
		return l, nil
	}
	l.LimitFile, l.RsvdLimitFile = pre+"limit_in_bytes", pre+"rsvd.limit_in_bytes"
	if l.Usage, err = readNumber(filepath.Join(dir, pre+"usage_in_bytes")); err != nil {
		return l, err
	}
	if l.Limit, err = readLimit(filepath.Join(dir, l.LimitFile)); err != nil {
		return l, err
	}
	l.RsvdUsage = optional(filepath.Join(dir, pre+"rsvd.usage_in_bytes"))
	l.RsvdLimit, _ = readLimit(filepath.Join(dir, l.RsvdLimitFile))
	if l.RsvdUsage == nil {
		l.RsvdLimitFile = ""
	}
	l.Failures = optional(filepath.Join(dir, pre+"failcnt"))
	return l, nil
}

// Chain reads the counters of path and of each ancestor that has hugetlb
// files, innermost first: a charge must fit under every one of them.
func Chain(h Hierarchy, path string, pageSize uint64) []Limits {
	var out []Limits
	p := filepath.Clean("/" + path)
	for {
		if l, err := Read(h, p, pageSize); err == nil {
			out = append(out, l)
		}
		if p == "/" {
			return out
		}
		p = filepath.Dir(p)
	}
}

// Refusing returns the innermost limit of chain that refuses a fault of
// n bytes (reservation: a reservation of n bytes), or false.
func Refusing(chain []Limits, n uint64, reservation bool) (Limits, bool) {
	for _, l := range chain {
		if (reservation && l.RefusesReservation(n)) || (!reservation && l.Refuses(n)) {
			return l, true
		}
	}
	return Limits{}, false
}

func readNumber(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing %s: %w", path, err)
	}
	return v, nil
}

// readLimit reads a limit file.
func readLimit(path string) (*uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	l, err := ParseLimit(string(b))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return l, nil
}

// ParseLimit reads a limit: "max" (v2) or a number that large (v1's
// PAGE_COUNTER_MAX pages) is none (nil).
func ParseLimit(s string) (*uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return nil, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("limit %q is neither max nor a number", truncate(s))
	}
	if v >= unlimitedFrom {
		return nil, nil
	}
	return &v, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func optional(path string) *uint64 {
	v, err := readNumber(path)
	if err != nil {
		return nil
	}
	return &v
}

// readKey reads "key value" lines (v2 .events files).
func readKey(path, key string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("reading %s: no %q", path, key)
}

// Hierarchies returns the mounted hierarchies that have the hugetlb
// controller, from a mountinfo file (/proc/self/mountinfo): the v2 tree
// when its root lists hugetlb in cgroup.controllers, and v1 mounts with
// the hugetlb option.
func Hierarchies(mountinfo string) ([]Hierarchy, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", mountinfo, err)
	}
	defer f.Close()
	var out []Hierarchy
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		m, ok := parseMount(sc.Text())
		if !ok {
			continue
		}
		switch {
		case m.fstype == "cgroup2" && m.root == "/":
			if ctl, err := os.ReadFile(filepath.Join(m.point, "cgroup.controllers")); err == nil &&
				hasWord(string(ctl), "hugetlb") {
				out = append(out, Hierarchy{Root: m.point, V2: true})
			}
		case m.fstype == "cgroup" && m.root == "/" && hasWord(strings.ReplaceAll(m.super, ",", " "), "hugetlb"):
			out = append(out, Hierarchy{Root: m.point})
		}
	}
	return out, sc.Err()
}

type mount struct{ root, point, fstype, super string }

// parseMount reads one mountinfo line: "36 35 98:0 /root /point opts -
// fstype source superopts", mount points with octal escapes.
func parseMount(line string) (mount, bool) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return mount{}, false
	}
	a, b := strings.Fields(pre), strings.Fields(post)
	if len(a) < 5 || len(b) < 3 {
		return mount{}, false
	}
	return mount{root: mounts.Unescape(a[3]), point: mounts.Unescape(a[4]), fstype: b[0], super: b[2]}, true
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// PathOf returns the path of pid's cgroup in h, from a /proc/PID/cgroup
// file: the "0::" line for v2, the line naming hugetlb for v1.
func PathOf(h Hierarchy, procCgroup string) (string, error) {
	b, err := os.ReadFile(procCgroup)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", procCgroup, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if h.V2 && parts[0] == "0" && parts[1] == "" {
			return parts[2], nil
		}
		if !h.V2 && hasWord(strings.ReplaceAll(parts[1], ",", " "), "hugetlb") {
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("reading %s: no hugetlb cgroup: %w", procCgroup, fs.ErrNotExist)
}

// ErrNoController is returned where no hierarchy has the controller.
var ErrNoController = errors.New("no hugetlb cgroup controller mounted")

// ForPid returns the hugetlb limit chain of a process for pageSize, in the
// first hierarchy that has the controller (a host mounts it once).
func ForPid(procRoot string, pid int, pageSize uint64) ([]Limits, error) {
	hs, err := Hierarchies(filepath.Join(procRoot, "self/mountinfo"))
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, ErrNoController
	}
	p, err := PathOf(hs[0], filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return nil, err
	}
	return Chain(hs[0], p, pageSize), nil
}

// maxWalk bounds the cgroups Limited looks at (a container host has
// thousands; the limits of interest are near the top).
const maxWalk = 20000

// Limited returns the counters of every cgroup of h that limits faults or
// reservations of one of the page sizes, in walk order.
func Limited(h Hierarchy, pageSizes []uint64) []Limits {
	var out []Limits
	seen := 0
	_ = filepath.WalkDir(h.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if seen++; seen > maxWalk {
			return filepath.SkipAll
		}
		rel, _ := filepath.Rel(h.Root, p)
		for _, ps := range pageSizes {
			l, err := Read(h, "/"+strings.TrimPrefix(rel, "."), ps)
			if err == nil && (l.Limit != nil || l.RsvdLimit != nil) {
				out = append(out, l)
			}
		}
		return nil
	})
	return out
}
