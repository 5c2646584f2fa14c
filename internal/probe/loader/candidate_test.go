package loader

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// TestCandidateSpecCopiesOnlyItsPrograms: a candidate gets copies of its
// own programs and of the maps and variables, which it may change without
// touching the family's parsed object (the next candidate starts from
// it), and shares the object's BTF instead of copying it. Copying the
// whole object per candidate allocated every program of the stall
// families twice (tp_btf and tracepoint variants) at start-up.
func TestCandidateSpecCopiesOnlyItsPrograms(t *testing.T) {
	base, err := loadReclaimSpec()
	if err != nil {
		t.Fatal(err)
	}
	keep := []string{reclaimProgDirectBeginBtf, reclaimProgDirectEndBtf}
	spec, err := candidateSpec(base, keep)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Programs) != len(keep) {
		t.Errorf("%d programs copied, want %d", len(spec.Programs), len(keep))
	}
	if spec.Types != base.Types {
		t.Error("the object's BTF was copied")
	}
	if len(spec.Maps) != len(base.Maps) || len(spec.Variables) != len(base.Variables) {
		t.Errorf("%d maps and %d variables, want %d and %d", len(spec.Maps), len(spec.Variables), len(base.Maps), len(base.Variables))
	}
	// What prepare and the loader change stays in the candidate.
	spec.Programs[reclaimProgDirectEndBtf].AttachTo = "changed"
	spec.Programs[reclaimProgDirectEndBtf].Type = ebpf.RawTracepoint
	for name, m := range spec.Maps {
		m.Name = "changed"
		if base.Maps[name].Name == "changed" {
			t.Errorf("map %s is shared with the parsed object", name)
		}
	}
	if p := base.Programs[reclaimProgDirectEndBtf]; p.AttachTo == "changed" || p.Type == ebpf.RawTracepoint {
		t.Error("a change to the candidate's program reached the parsed object")
	}
	if _, err := candidateSpec(base, []string{"no_such_program"}); err == nil {
		t.Error("a missing program was not reported")
	}
	// The instructions are not copied: cilium/ebpf copies them twice
	// more before it rewrites them.
	got, want := spec.Programs[reclaimProgDirectBeginBtf].Instructions, base.Programs[reclaimProgDirectBeginBtf].Instructions
	if len(got) == 0 || &got[0] != &want[0] {
		t.Error("the candidate's instructions were copied")
	}
}

// TestUnusableCandidateIsNotLoaded: a candidate (or companion) whose
// usable check fails is refused with that reason before its programs are
// looked at, let alone loaded and verified: here the program does not
// exist, which loading would report instead.
func TestUnusableCandidateIsNotLoaded(t *testing.T) {
	s := &Session{}
	c := candidate{name: "kprobe/x", programs: []string{"no_such_program"}, usable: func(*Session) error { return errors.New("no way to attach here") }}
	st := s.attachCompanion(nil, &attached{}, c)
	if st.Attached || st.Reason != "no way to attach here" {
		t.Errorf("companion %+v, want refused as unusable", st)
	}
	_, hs := s.attach(plan{cands: []candidate{c}}, nil)
	if hs.Attached || len(hs.Rejected) != 1 || hs.Rejected[0].Reason != "no way to attach here" {
		t.Errorf("candidate %+v, want refused as unusable", hs)
	}
}

// TestKprobesUsable: kprobes are usable through the kprobe PMU or
// tracefs's kprobe_events, and refused, naming both, with neither.
func TestKprobesUsable(t *testing.T) {
	dir := t.TempDir()
	defer func(p string) { kprobePMU = p }(kprobePMU)
	kprobePMU = filepath.Join(dir, "no-pmu")
	s := &Session{tracefsDir: filepath.Join(dir, "tracefs")}
	if err := os.Mkdir(s.tracefsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := kprobesUsable(s); err == nil || !strings.Contains(err.Error(), "no kprobes") {
		t.Errorf("neither PMU nor kprobe_events: %v, want refused", err)
	}
	if err := os.WriteFile(filepath.Join(s.tracefsDir, "kprobe_events"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := kprobesUsable(s); err != nil {
		t.Errorf("with kprobe_events: %v", err)
	}
	kprobePMU = dir
	if err := kprobesUsable(&Session{}); err != nil {
		t.Errorf("with the PMU, without tracefs: %v", err)
	}
}
