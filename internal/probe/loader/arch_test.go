package loader

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// archObjects are the bpf2go targets every program set is built for; a
// binary embeds only its own architecture's objects.
var archObjects = []string{"x86", "arm64"}

// TestObjectsForEveryArch checks the committed objects of each
// architecture against each other, whichever architecture runs the test:
// the same programs with the same hooks, the same maps, and the same
// layout of every struct Go shares with C (the Go types are generated once
// per architecture from these, and the decoders read them as one layout).
// The register struct of the PT_REGS_* macros must differ, or the
// objects were not built with their own __TARGET_ARCH_*.
func TestObjectsForEveryArch(t *testing.T) {
	for obj := range objects {
		t.Run(obj, func(t *testing.T) {
			specs := map[string]*ebpf.CollectionSpec{}
			for _, arch := range archObjects {
				spec, err := ebpf.LoadCollectionSpec(fmt.Sprintf("%s_%s_bpfel.o", obj, arch))
				if err != nil {
					t.Fatalf("%s objects missing (make generate): %v", arch, err)
				}
				specs[arch] = spec
			}
			x86, arm := specs["x86"], specs["arm64"]
			if got, want := progHooks(arm), progHooks(x86); !reflect.DeepEqual(got, want) {
				t.Errorf("programs: arm64 %v, x86 %v", got, want)
			}
			if got, want := mapShapes(arm), mapShapes(x86); !reflect.DeepEqual(got, want) {
				t.Errorf("maps: arm64 %v, x86 %v", got, want)
			}
			for _, c := range layoutCases {
				if c.obj != obj {
					continue
				}
				if got, want := structLayout(t, arm, c.cName), structLayout(t, x86, c.cName); got != want {
					t.Errorf("struct %s: arm64 %s, x86 %s", c.cName, got, want)
				}
			}
		})
	}
}

// TestKprobeRegistersPerArch: warn_alloc's kprobe reads its fourth
// argument through PT_REGS_PARM4, which is user_pt_regs.regs[3] on arm64
// and pt_regs.cx on x86.
func TestKprobeRegistersPerArch(t *testing.T) {
	for arch, want := range map[string]bool{"x86": false, "arm64": true} {
		spec, err := ebpf.LoadCollectionSpec("alloc_" + arch + "_bpfel.o")
		if err != nil {
			t.Fatal(err)
		}
		var st *btf.Struct
		has := spec.Types.TypeByName("user_pt_regs", &st) == nil
		if has != want {
			t.Errorf("%s alloc object: user_pt_regs in BTF %v, want %v", arch, has, want)
		}
	}
}

func progHooks(spec *ebpf.CollectionSpec) map[string]string {
	out := map[string]string{}
	for name, p := range spec.Programs {
		out[name] = fmt.Sprintf("%s %s %s", p.Type, p.AttachType, p.SectionName)
	}
	return out
}

func mapShapes(spec *ebpf.CollectionSpec) map[string]string {
	out := map[string]string{}
	for name, m := range spec.Maps {
		out[name] = fmt.Sprintf("%s key %d value %d max %d", m.Type, m.KeySize, m.ValueSize, m.MaxEntries)
	}
	return out
}

// structLayout is a struct's size and its members' names and offsets.
func structLayout(t *testing.T, spec *ebpf.CollectionSpec, name string) string {
	t.Helper()
	var st *btf.Struct
	if err := spec.Types.TypeByName(name, &st); err != nil {
		t.Fatalf("struct %s not in BTF: %v", name, err)
	}
	s := fmt.Sprintf("size %d:", st.Size)
	for _, m := range st.Members {
		s += fmt.Sprintf(" %s@%d", m.Name, m.Offset.Bytes())
	}
	return s
}
