package loader

// The BPF objects and their Go bindings are generated and committed, so
// that `go build` needs no clang. `make generate` re-runs this with the
// pinned compiler; CI fails when the result differs from what is committed.

//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target amd64 -type alloc_event -type alloc_key -type alloc_val -type event_hdr -type warn_event alloc ../../bpf/alloc.c -- -I../../bpf/include -I../../bpf
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target amd64 -type extfrag_event -type extfrag_key -type extfrag_val extfrag ../../bpf/extfrag.c -- -I../../bpf/include -I../../bpf
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target amd64 -type hugetlb_event -type inflight hugetlb ../../bpf/hugetlb.c -- -I../../bpf/include -I../../bpf
