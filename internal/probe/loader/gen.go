package loader

// The BPF objects and their Go bindings are generated and committed, so
// that `go build` needs no clang. `make generate` re-runs this with the
// pinned compiler; CI fails when the result differs from what is committed.
//
// Every struct and enum the Go side reads is named with -type, so Go uses
// bpf2go's types and constants, never hand-written copies. The types of
// bpf/common.h are generated once, with the alloc bindings.

//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target amd64,arm64 -type event_hdr -type event_kind -type exec_ctx -type stat_index -type preempt_source -type alloc_event -type alloc_key -type alloc_val -type warn_event -type warn_what -type atomic_demand -type atomic_top_key -type atomic_top_val alloc ../../../bpf/alloc.c -- -I../../../bpf/include -I../../../bpf
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target amd64,arm64 -type extfrag_event -type extfrag_key -type extfrag_val extfrag ../../../bpf/extfrag.c -- -I../../../bpf/include -I../../../bpf
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target amd64,arm64 -type hugetlb_event -type inflight -type hugetlb_call -type hugetlb_note hugetlb ../../../bpf/hugetlb.c -- -I../../../bpf/include -I../../../bpf
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target amd64,arm64 -type stall_key -type stall_kind -type reclaim_event -type reclaim_val -type reclaim_inflight -type stall_stack reclaim ../../../bpf/reclaim.c -- -I../../../bpf/include -I../../../bpf
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target amd64,arm64 -type stall_key -type stall_kind -type compaction_event -type compact_val -type compact_window -type stall_stack compaction ../../../bpf/compaction.c -- -I../../../bpf/include -I../../../bpf
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target amd64,arm64 -type hugefault_event -type hugefault_kind -type hugefault_source -type vma_info -type maple_walk hugefault ../../../bpf/hugefault.c -- -I../../../bpf/include -I../../../bpf

// Line info is stripped from the objects: see internal/build/striplines.
//go:generate go run ../../build/striplines alloc_x86_bpfel.o alloc_arm64_bpfel.o extfrag_x86_bpfel.o extfrag_arm64_bpfel.o hugetlb_x86_bpfel.o hugetlb_arm64_bpfel.o reclaim_x86_bpfel.o reclaim_arm64_bpfel.o compaction_x86_bpfel.o compaction_arm64_bpfel.o hugefault_x86_bpfel.o hugefault_arm64_bpfel.o
