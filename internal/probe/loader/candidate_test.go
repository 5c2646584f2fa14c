package loader

import (
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
}
