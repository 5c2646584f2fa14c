package loader

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// TestCandidatesShareTheFamilysMaps: a candidate that loads and then
// fails leaves its maps to the next one, which loads into the same
// kernel maps instead of creating them all again (where fexit is refused,
// the alloc family created its 4 MiB stack map and full hash tables twice
// at every start). The first candidate fails after its programs loaded,
// at attach, so that both see their maps.
func TestCandidatesShareTheFamilysMaps(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	// Start does this; on kernels before 5.11 maps are charged to
	// RLIMIT_MEMLOCK, and its default refuses the ring buffer (EPERM).
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	s := &Session{btfCache: btf.NewCache()}
	var err error
	if s.kernel, err = s.btfCache.Kernel(); err != nil {
		t.Fatal(err)
	}
	base, err := loadExtfragSpec()
	if err != nil {
		t.Fatal(err)
	}
	if err := writeConfig(base, s.config()); err != nil {
		t.Fatal(err)
	}
	var ids []ebpf.MapID
	seen := func(coll *ebpf.Collection) {
		info, err := coll.Maps[extfragMapExtfragEvents].Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		ids = append(ids, id)
	}
	cand := func(name string, fail bool) candidate {
		return candidate{name: name, programs: []string{extfragProgExtfragBtf}, attach: func(coll *ebpf.Collection) ([]link.Link, error) {
			seen(coll)
			if fail {
				return nil, errors.New("refused on purpose")
			}
			return nil, nil
		}}
	}
	f := plan{family: registry[event.SignalExtfrag], cands: []candidate{cand("first", true), cand("second", false)}}
	a, st := s.attach(f, base)
	if a == nil {
		t.Fatalf("no candidate attached: %+v", st)
	}
	defer func() {
		a.reader.Close()
		a.coll.Close()
	}()
	if st.Hook != "second" || len(st.Rejected) != 1 || st.Rejected[0].Reason != "refused on purpose" {
		t.Errorf("hook status %+v, want second attached and first refused on purpose", st)
	}
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Errorf("ring buffer map IDs seen by the two candidates: %v, want one map shared", ids)
	}
}
