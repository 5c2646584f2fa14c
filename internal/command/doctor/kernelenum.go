package doctor

import (
	"github.com/memtrace/memtrace/internal/host/rawbtf"
	"github.com/memtrace/memtrace/pkg/gfp"
)

// kernelGFPEnum reads the members of the running kernel's GFP bit enum
// from its BTF in place, with no BPF loaded and no BTF inflated; nil when
// there is no BTF or no such enum (before 6.10): gfp.Load then falls
// back to its built-in tables.
func kernelGFPEnum(path string) []gfp.EnumMember {
	raw, err := rawbtf.Open(path)
	if err != nil {
		return nil
	}
	defer raw.Close()
	members, err := raw.EnumMembers(raw.EnumWithValue(gfp.EnumMarker))
	if err != nil {
		return nil
	}
	out := make([]gfp.EnumMember, len(members))
	for i, m := range members {
		out[i] = gfp.EnumMember(m)
	}
	return out
}
