package loader

import (
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// maxVerifiedInsns bounds the instructions the verifier walks for one
// program. Start-up loads every program of every family, so this work is
// start-up time: with the stall histogram slot computed by a chain of
// ifs, the reclaim and compaction programs took 10,000–19,000 each (most
// of a five-family start's CPU); the largest now take ~1,400.
const maxVerifiedInsns = 4096

// TestVerifierWorkBounded loads every family and reads, per program,
// how many instructions the kernel's verifier processed (bpf_prog_info's
// verified_insns, from 5.16). A count, not a time: it does not depend on
// the machine's load.
func TestVerifierWorkBounded(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	// A stall threshold with stacks makes the stall programs take
	// stacks: other paths.
	for _, threshold := range []time.Duration{0, 10 * time.Millisecond} {
		t.Run("stall-threshold="+threshold.String(), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Signals = event.AllSignals
			cfg.StallThreshold = threshold
			cfg.StallStacks = true
			s, err := Start(cfg, Naming{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			checked := 0
			for sig, a := range s.families {
				for name, p := range a.coll.Programs {
					info, err := p.Info()
					if err != nil {
						t.Fatalf("%s/%s: %v", sig, name, err)
					}
					n, ok := info.VerifiedInstructions()
					if !ok {
						t.Skip("this kernel does not report verified instructions (before 5.16)")
					}
					checked++
					t.Logf("%s/%s: %d instructions verified", sig, name, n)
					if n > maxVerifiedInsns {
						t.Errorf("%s/%s: the verifier processed %d instructions, want at most %d", sig, name, n, maxVerifiedInsns)
					}
				}
			}
			if len(s.families) != len(event.AllSignals) || checked == 0 {
				t.Errorf("%d families attached, %d programs checked; want all %d families", len(s.families), checked, len(event.AllSignals))
			}
		})
	}
}
