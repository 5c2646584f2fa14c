package hugepages

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Mapping is one entry of /proc/PID/smaps (or, with only the header
// fields set, of /proc/PID/maps). Sizes are in kB as the kernel prints
// them.
type Mapping struct {
	Start  uint64 `json:"start"`
	End    uint64 `json:"end"`
	Perms  string `json:"perms"`
	Offset uint64 `json:"offset"`
	Dev    string `json:"dev"`
	Inode  uint64 `json:"inode"`
	Path   string `json:"path,omitempty"`

	SizeKB           uint64 `json:"size_kb"`
	KernelPageSizeKB uint64 `json:"kernel_page_size_kb"`
	RssKB            uint64 `json:"rss_kb"`
	// SharedHugetlbKB and PrivateHugetlbKB count the huge pages faulted
	// in; a hugetlb mapping's pages are reserved at mmap or shmget time
	// and appear here only once touched.
	SharedHugetlbKB  uint64   `json:"shared_hugetlb_kb"`
	PrivateHugetlbKB uint64   `json:"private_hugetlb_kb"`
	AnonHugePagesKB  uint64   `json:"anon_huge_pages_kb"` // THP, not hugetlb
	ShmemPmdMappedKB uint64   `json:"shmem_pmd_mapped_kb"`
	VmFlags          []string `json:"vm_flags,omitempty"`
	// Detailed is false for an entry read from maps, where only the
	// header is known.
	Detailed bool `json:"-"`
}

// Shared reports a shared mapping (the 's' of "rw-s").
func (m Mapping) Shared() bool { return len(m.Perms) == 4 && m.Perms[3] == 's' }

// Hugetlb reports a hugetlbfs mapping: the kernel says so with the "ht"
// VmFlag and with a KernelPageSize above the base page.
func (m Mapping) Hugetlb() bool {
	for _, f := range m.VmFlags {
		if f == "ht" {
			return true
		}
	}
	// VmFlags exist since Linux 3.8; before, the page size tells.
	return m.Detailed && m.VmFlags == nil && m.KernelPageSizeKB > BasePageKB
}

// BasePageKB is the base page size of this machine in kB (4 on x86).
var BasePageKB = uint64(os.Getpagesize() >> 10)

// HugetlbFaultedKB is how much of a hugetlb mapping is backed by pages now.
func (m Mapping) HugetlbFaultedKB() uint64 { return m.SharedHugetlbKB + m.PrivateHugetlbKB }

// SysV reports a System V shared memory attachment. The kernel names the
// segment's file /SYSV<key in hex> and gives it the shmid as inode number.
func (m Mapping) SysV() (shmid int64, ok bool) {
	if !strings.HasPrefix(m.Path, "/SYSV") {
		return 0, false
	}
	return int64(m.Inode), true
}

// ReadSmaps reads /proc/PID/smaps under procRoot.
func ReadSmaps(procRoot string, pid int) ([]Mapping, error) {
	return readMappings(filepath.Join(procRoot, strconv.Itoa(pid), "smaps"))
}

// ReadMaps reads /proc/PID/maps under procRoot: headers only, but without
// the page-table walk smaps costs for every mapping.
func ReadMaps(procRoot string, pid int) ([]Mapping, error) {
	return readMappings(filepath.Join(procRoot, strconv.Itoa(pid), "maps"))
}

func readMappings(path string) ([]Mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ms, err := ParseSmaps(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return ms, nil
}

// ParseSmaps parses the smaps format; a maps file parses too (headers
// only). Unknown keys are ignored: the kernel adds some every few releases.
func ParseSmaps(r io.Reader) ([]Mapping, error) {
	var out []Mapping
	sc := bufio.NewScanner(r)
	// Paths can be as long as PATH_MAX; VmFlags lines are short.
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		key, val, isKey := smapsKey(b)
		if !isKey {
			m, err := parseMapsHeader(string(b))
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			out = append(out, m)
			continue
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("line %d: %q before any mapping", line, key)
		}
		m := &out[len(out)-1]
		m.Detailed = true
		if key == "VmFlags" {
			m.VmFlags = strings.Fields(string(val))
			continue
		}
		dst := m.field(key)
		if dst == nil {
			continue
		}
		v, err := parseKB(val)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", line, key, err)
		}
		*dst = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func (m *Mapping) field(key string) *uint64 {
	switch key {
	case "Size":
		return &m.SizeKB
	case "KernelPageSize":
		return &m.KernelPageSizeKB
	case "Rss":
		return &m.RssKB
	case "Shared_Hugetlb":
		return &m.SharedHugetlbKB
	case "Private_Hugetlb":
		return &m.PrivateHugetlbKB
	case "AnonHugePages":
		return &m.AnonHugePagesKB
	case "ShmemPmdMapped":
		return &m.ShmemPmdMappedKB
	}
	return nil
}

// smapsKey splits "Key:   123 kB". A mapping header never has a colon
// right after its first word (its first word is the address range).
func smapsKey(b []byte) (key string, val []byte, ok bool) {
	i := bytes.IndexAny(b, ": ")
	if i <= 0 || b[i] != ':' {
		return "", nil, false
	}
	return string(b[:i]), bytes.TrimSpace(b[i+1:]), true
}

func parseKB(v []byte) (uint64, error) {
	s := strings.TrimSpace(strings.TrimSuffix(string(v), "kB"))
	return strconv.ParseUint(s, 10, 64)
}

// parseMapsHeader parses "start-end perms offset dev inode   path". The
// path is the rest of the line and may contain spaces (and " (deleted)").
func parseMapsHeader(s string) (Mapping, error) {
	var m Mapping
	rest := s
	var fields [5]string
	for i := range fields {
		rest = strings.TrimLeft(rest, " ")
		j := strings.IndexByte(rest, ' ')
		if j < 0 {
			if i < 4 {
				return m, fmt.Errorf("mapping header %q: want at least 5 fields", truncate(s))
			}
			j = len(rest)
		}
		fields[i], rest = rest[:j], rest[j:]
	}
	lo, hi, ok := strings.Cut(fields[0], "-")
	if !ok {
		return m, fmt.Errorf("mapping header %q: bad address range", truncate(s))
	}
	var err error
	if m.Start, err = strconv.ParseUint(lo, 16, 64); err != nil {
		return m, fmt.Errorf("mapping header %q: bad start address", truncate(s))
	}
	if m.End, err = strconv.ParseUint(hi, 16, 64); err != nil || m.End < m.Start {
		return m, fmt.Errorf("mapping header %q: bad end address", truncate(s))
	}
	if len(fields[1]) != 4 {
		return m, fmt.Errorf("mapping header %q: bad permissions", truncate(s))
	}
	m.Perms = fields[1]
	if m.Offset, err = strconv.ParseUint(fields[2], 16, 64); err != nil {
		return m, fmt.Errorf("mapping header %q: bad offset", truncate(s))
	}
	m.Dev = fields[3]
	if m.Inode, err = strconv.ParseUint(fields[4], 10, 64); err != nil {
		return m, fmt.Errorf("mapping header %q: bad inode", truncate(s))
	}
	m.Path = strings.TrimLeft(rest, " ")
	m.SizeKB = (m.End - m.Start) >> 10
	return m, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
