package container

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/event"
)

// TestParseSamples reads every case of testdata/paths.txt.
func TestParseSamples(t *testing.T) {
	f, err := os.Open("testdata/paths.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Split(text, " | ")
		if len(fields) != 6 {
			t.Fatalf("paths.txt:%d: %d fields, want 6", line, len(fields))
		}
		for i, f := range fields {
			if f == "-" {
				fields[i] = ""
			}
		}
		want := event.Container{ID: fields[1], Runtime: fields[2], PodUID: fields[3], QoS: fields[4], Conmon: fields[5] == "conmon"}
		if got := Parse(fields[0]); got != want {
			t.Errorf("paths.txt:%d: Parse(%q)\n got %+v\nwant %+v", line, fields[0], got, want)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 30 {
		t.Fatalf("only %d cases read", n)
	}
}

func TestParseAbsoluteAndProcLine(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	rel := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c178021_5860_4495_a1ab_f9ac17877672.slice/cri-containerd-" + id + ".scope"
	want := Parse(rel)
	for _, p := range []string{"/sys/fs/cgroup" + rel, "/sys/fs/cgroup/memory" + rel, "0::" + rel, "4:memory" + ":" + rel} {
		if got := Parse(p); got != want {
			t.Errorf("Parse(%q) = %+v, want %+v", p, got, want)
		}
	}
	if want.ShortID() != id[:12] {
		t.Errorf("ShortID = %q", want.ShortID())
	}
	if (event.Container{ID: "db01"}).ShortID() != "db01" {
		t.Error("ShortID of a name changed it")
	}
}

func TestPodUID(t *testing.T) {
	for in, want := range map[string]string{
		"1c178021_5860_4495_a1ab_f9ac17877672": "1c178021-5860-4495-a1ab-f9ac17877672",
		"1c178021-5860-4495-a1ab-f9ac17877672": "1c178021-5860-4495-a1ab-f9ac17877672",
		"3b9e4f9f2d5b0bd2ac1fd3c4c1c5ab0d":     "3b9e4f9f2d5b0bd2ac1fd3c4c1c5ab0d",
		"1c178021_5860_4495_a1ab_f9ac1787767":  "",
		"1c1780215_860_4495_a1ab_f9ac17877672": "",
		"zc178021-5860-4495-a1ab-f9ac17877672": "",
		"":                                     "",
	} {
		got, ok := podUID(in)
		if got != want || ok != (want != "") {
			t.Errorf("podUID(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// TestAttributor checks which hierarchy wins and what is cached.
func TestAttributor(t *testing.T) {
	const ctr = "cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope"
	pod := "/kubepods.slice/kubepods-pod1c178021_5860_4495_a1ab_f9ac17877672.slice"
	memcg := map[uint64]string{10: pod, 11: pod + "/" + ctr, 12: "/system.slice/mysql.service"}
	v2 := map[uint64]string{20: pod + "/" + ctr, 21: "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope"}
	calls := 0
	a := NewAttributorFunc(func(id uint64) string { calls++; return memcg[id] }, func(id uint64) string { return v2[id] })

	if got := a.Lookup(0, 11); got.ID == "" || got.PodUID == "" || got.QoS != QoSGuaranteed {
		t.Errorf("memcg of the container: %+v", got)
	}
	// The memory cgroup is the pod's: the v2 cgroup names the container.
	if got := a.Lookup(20, 10); got.ID == "" || got.PodUID == "" {
		t.Errorf("pod memcg, container v2 cgroup: %+v", got)
	}
	// Host service in v1 memory, docker scope in v2 (hybrid host).
	if got := a.Lookup(21, 12); got.Runtime != RuntimeDocker {
		t.Errorf("hybrid: %+v", got)
	}
	if got := a.Lookup(99, 98); got.InContainer() {
		t.Errorf("unknown ids: %+v", got)
	}
	before := calls
	a.Lookup(0, 11)
	if calls != before {
		t.Error("a resolved lookup was not cached")
	}
	a.Lookup(99, 98)
	if calls == before {
		t.Error("an unresolved lookup was cached")
	}
	var nilA *Attributor
	if nilA.Lookup(1, 2).InContainer() {
		t.Error("nil attributor found a container")
	}
}
