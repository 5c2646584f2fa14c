package hugepages

import (
	"os"
	"strings"
	"testing"
)

func TestParseSmapsReal(t *testing.T) {
	f, err := os.Open("testdata/smaps/head-6.18")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := ParseSmaps(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("%d mappings, want 2", len(ms))
	}
	m := ms[0]
	if m.Path != "/usr/bin/head" || m.Perms != "r--p" || m.SizeKB != 8 || m.KernelPageSizeKB != 4 || m.RssKB != 8 || !m.Detailed {
		t.Errorf("first mapping %+v", m)
	}
	if m.Hugetlb() || m.Shared() {
		t.Errorf("a private file mapping reads as hugetlb or shared")
	}
	if strings.Join(m.VmFlags, " ") != "rd mr mw me" {
		t.Errorf("VmFlags %q", m.VmFlags)
	}
}

func TestParseMapsReal(t *testing.T) {
	f, err := os.Open("testdata/smaps/maps-6.18")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := ParseSmaps(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 10 {
		t.Fatalf("%d mappings", len(ms))
	}
	for _, m := range ms {
		if m.Detailed || m.End <= m.Start || m.SizeKB != (m.End-m.Start)>>10 {
			t.Errorf("mapping %+v", m)
		}
	}
	if last := ms[len(ms)-1]; last.Path != "[vsyscall]" {
		t.Errorf("last path %q, want [vsyscall]", last.Path)
	}
}

func TestParseSmapsHugetlb(t *testing.T) {
	ms, err := ReadSmaps("testdata/oracle/proc", 4101)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 4 {
		t.Fatalf("%d mappings, want 4", len(ms))
	}
	sga := ms[1]
	if !sga.Hugetlb() || !sga.Shared() || sga.KernelPageSizeKB != 2048 || sga.SizeKB != 4554*2048 || sga.HugetlbFaultedKB() != 2364<<10 {
		t.Errorf("SGA mapping %+v", sga)
	}
	if id, ok := sga.SysV(); !ok || id != 65538 {
		t.Errorf("SysV() = %d, %v; want 65538", id, ok)
	}
	ms, err = ReadSmaps("testdata/oracle/proc", 7001)
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].Path != "/dev/hugepages/guest ram" {
		t.Errorf("path with a space: %q", ms[0].Path)
	}
	// Without VmFlags (before Linux 3.8) the page size tells.
	old := Mapping{Detailed: true, KernelPageSizeKB: 2048}
	if !old.Hugetlb() {
		t.Error("a 2 MiB KernelPageSize without VmFlags is not hugetlb")
	}
}

func TestParseSmapsErrors(t *testing.T) {
	for name, in := range map[string]string{
		"key first":     "Size: 4 kB\n",
		"bad range":     "zz-10 rw-p 00000000 00:00 0\n",
		"reversed":      "20-10 rw-p 00000000 00:00 0\n",
		"short header":  "10-20 rw-p 0\n",
		"bad perms":     "10-20 rw 00000000 00:00 0\n",
		"bad inode":     "10-20 rw-p 00000000 00:00 x\n",
		"bad value":     "10-20 rw-p 00000000 00:00 0\nSize: many kB\n",
		"bad offset":    "10-20 rw-p zz 00:00 0\n",
		"bad hex range": "10-2g rw-p 00000000 00:00 0\n",
	} {
		if _, err := ParseSmaps(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted %q", name, in)
		}
	}
	// Keys this parser does not know are skipped, even with odd values.
	in := "10-2000 rw-s 00000000 00:01 7 /dev/zero (deleted)\nSize: 8 kB\nTHPeligible: 0\nProtectionKey: 0\nNewKey: text here\n"
	ms, err := ParseSmaps(strings.NewReader(in))
	if err != nil || len(ms) != 1 || ms[0].Path != "/dev/zero (deleted)" {
		t.Errorf("got %+v, %v", ms, err)
	}
}

func TestParseSysVShm(t *testing.T) {
	segs, err := ReadSysVShm("testdata/oracle/proc")
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 5 {
		t.Fatalf("%d segments, want 5", len(segs))
	}
	want := Segment{Key: 0, ShmID: 65538, Perms: 0o640, Size: 9550430208, Cpid: 4101, Lpid: 4107, Nattch: 2,
		UID: 54321, GID: 54322, RSSBytes: 2478833664}
	if segs[1] != want {
		t.Errorf("segment 1 = %+v\nwant %+v", segs[1], want)
	}
	if segs[2].Key != 1017242036 || segs[4].Nattch != 0 || segs[4].Removed() {
		t.Errorf("segments %+v", segs)
	}
	// A 2.6 kernel has no rss and swap columns.
	f, _ := os.Open("testdata/shm/2.6-no-rss")
	defer f.Close()
	old, err := ParseSysVShm(f)
	if err != nil || len(old) != 1 || old[0].ShmID != 3 || old[0].Size != 2<<20 || !old[0].Removed() {
		t.Errorf("2.6 format: %+v, %v", old, err)
	}
	// No file (no System V IPC in the kernel): no segments, no error.
	if segs, err := ReadSysVShm(t.TempDir()); err != nil || segs != nil {
		t.Errorf("missing file: %v, %v", segs, err)
	}
}

func TestParseSysVShmErrors(t *testing.T) {
	hdr := "key shmid perms size cpid lpid nattch uid gid\n"
	for name, in := range map[string]string{
		"empty":          "",
		"no size column": "key shmid perms cpid lpid nattch uid gid\n",
		"short row":      hdr + "0 1 600 4096 1 1 1 0\n",
		"bad perms":      hdr + "0 1 999 4096 1 1 1 0 0\n",
		"bad size":       hdr + "0 1 600 -4 1 1 1 0 0\n",
	} {
		if _, err := ParseSysVShm(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseStatus(t *testing.T) {
	st, err := ReadStatus("testdata/oracle/proc", 5120)
	if err != nil {
		t.Fatal(err)
	}
	if st.Comm != "postgres" || st.PPid != 1 || st.UID != 101 || st.GID != 104 || st.VmPTEKB != 3208 {
		t.Errorf("status %+v", st)
	}
	if !st.InGroup(103) || st.InGroup(0) || st.HasIPCLock() {
		t.Errorf("groups %v", st.Groups)
	}
	if l, err := MemlockLimit("testdata/oracle/proc", 5120); err != nil || l != 65536 {
		t.Errorf("memlock %d, %v", l, err)
	}
	if l, err := MemlockLimit("testdata/oracle/proc", 7001); err != nil || l != Unlimited {
		t.Errorf("memlock unlimited: %d, %v", l, err)
	}
	if _, err := ParseStatus([]byte("PPid:\tx\n")); err == nil {
		t.Error("bad PPid accepted")
	}
}

func TestHugetlbfsMounts(t *testing.T) {
	got := HugetlbfsMounts("testdata/oracle/proc")
	if len(got) != 1 || got[0] != "/dev/hugepages" {
		t.Errorf("got %q", got)
	}
}

func FuzzParseSmaps(f *testing.F) {
	for _, p := range []string{"testdata/smaps/head-6.18", "testdata/oracle/proc/4101/smaps"} {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ParseSmaps(strings.NewReader(string(data)))
		if err == nil {
			for _, m := range ms {
				_ = m.Hugetlb()
			}
		}
	})
}

func FuzzParseSysVShm(f *testing.F) {
	b, _ := os.ReadFile("testdata/oracle/proc/sysvipc/shm")
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseSysVShm(strings.NewReader(string(data)))
	})
}
