package loader

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/event"
)

// without returns a loader of the alloc object with one program, map or
// variable removed, as if the object and its bindings had been generated
// from different sources.
func without(kind, name string) func() (*ebpf.CollectionSpec, error) {
	return func() (*ebpf.CollectionSpec, error) {
		spec, err := loadAlloc()
		if err != nil {
			return nil, err
		}
		switch kind {
		case "program":
			delete(spec.Programs, name)
		case "map":
			delete(spec.Maps, name)
		case "variable":
			delete(spec.Variables, name)
		}
		return spec, nil
	}
}

// TestMissingContractFailsLoad: loading an object that lacks a program,
// map or variable the Go side expects fails, naming it. Configuration
// used to be written by name and a missing variable skipped silently, so
// a renamed C global left its filter off without a word.
func TestMissingContractFailsLoad(t *testing.T) {
	for _, c := range []struct{ kind, name string }{
		{"variable", allocVarCFG},
		{"program", allocProgWarnAllocKprobe},
		{"map", allocMapAllocStacks},
	} {
		_, err := loadChecked("alloc", without(c.kind, c.name), &allocSpecs{})
		if err == nil {
			t.Errorf("no error without %s %s", c.kind, c.name)
			continue
		}
		want := "missing " + c.kind + ` "` + c.name + `"`
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "alloc") {
			t.Errorf("without %s %s: error %q does not say %q", c.kind, c.name, err, want)
		}
	}
	for name, load := range map[string]func() (*ebpf.CollectionSpec, error){
		"alloc": loadAllocSpec, "extfrag": loadExtfragSpec, "hugetlb": loadHugetlbSpec,
		"reclaim": loadReclaimSpec, "compaction": loadCompactionSpec,
	} {
		if _, err := load(); err != nil {
			t.Errorf("embedded %s object: %v", name, err)
		}
	}
}

// TestWriteConfigNeedsCFG: the configuration cannot be written into an
// object without CFG (a spec built by other means than loadChecked).
func TestWriteConfigNeedsCFG(t *testing.T) {
	spec, err := without("variable", allocVarCFG)()
	if err != nil {
		t.Fatal(err)
	}
	err = writeConfig(spec, memtraceConfig{})
	if err == nil || !strings.Contains(err.Error(), "no variable CFG") {
		t.Fatalf("error %v, want one naming CFG", err)
	}
}

// TestLoadCandidateNeedsPrograms: a candidate naming a program the object
// lacks fails before anything is loaded, with the program's name.
func TestLoadCandidateNeedsPrograms(t *testing.T) {
	spec, err := loadAllocSpec()
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{}
	_, _, _, err = s.loadCandidate(spec, candidate{name: "tp_btf/x", programs: []string{allocProgAllocFailBtf, "no_such_prog"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "no program no_such_prog") {
		t.Fatalf("error %v, want one naming no_such_prog", err)
	}
}

// TestConfigReachesEverySpec writes a session's configuration and reads
// it back from each object's CFG, field by field as the programs see it.
func TestConfigReachesEverySpec(t *testing.T) {
	s := &Session{
		cfg:       Config{Pid: 42, Comm: "postgres", CgroupID: 7, SampleFirst: 8, LargeSharedMin: 1 << 26, FallbackMin: 1 << 21},
		preempt:   preemptLocation{src: allocPreemptSourcePREEMPT_PERCPU, rqOff: 0x3000, pcOff: 0x28},
		gfpNowarn: 0x2000,
	}
	want := s.config()
	if want.PageblockOrder != 9 {
		t.Errorf("pageblock order %d, want the default 9", want.PageblockOrder)
	}
	if want.FilterCommLen != 8 || want.FilterComm[7] != 's' || want.FilterComm[8] != 0 {
		t.Errorf("comm filter %v (len %d)", want.FilterComm, want.FilterCommLen)
	}
	if want.NrMmap != unix.SYS_MMAP || want.MapHugetlb != unix.MAP_HUGETLB || want.ShmHugetlb != 0o4000 {
		t.Errorf("syscall ABI values: %+v", want)
	}
	if len(registry) != len(event.AllSignals) {
		t.Errorf("%d families registered for %d signals", len(registry), len(event.AllSignals))
	}
	for name, f := range registry {
		spec, err := f.load()
		if err != nil {
			t.Fatal(err)
		}
		if err := writeConfig(spec, want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Copies, one per candidate, keep it.
		var got memtraceConfig
		if err := spec.Copy().Variables[cfgVar].Get(&got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != want {
			t.Errorf("%s: CFG reads back %+v, want %+v", name, got, want)
		}
	}
}

func TestStartRefusesLongComm(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Comm = "sixteen-chars-xx"
	_, err := Start(cfg, Naming{})
	if err == nil || !strings.Contains(err.Error(), "15-character") {
		t.Fatalf("error %v, want the 15-character limit", err)
	}
}
