package mman

// mmap flags. The low four bits are a type, not flags.
const (
	mapType          = 0x0f
	mapHugeTLB       = 0x40000
	mapUninitialized = 0x4000000 // MAP_UNINITIALIZED, shares bit 26 with the size
)

var mapTypes = map[uint64]string{
	0x01: "MAP_SHARED",
	0x02: "MAP_PRIVATE",
	0x03: "MAP_SHARED_VALIDATE",
	0x08: "MAP_DROPPABLE", // 6.11
}

var mapFlags = []flagName{
	{0x10, "MAP_FIXED"},
	{0x20, "MAP_ANONYMOUS"},
	{0x40, "MAP_32BIT"},   // amd64 only
	{0x80, "MAP_ABOVE4G"}, // amd64 only, 6.5
	{0x100, "MAP_GROWSDOWN"},
	{0x800, "MAP_DENYWRITE"},
	{0x1000, "MAP_EXECUTABLE"},
	{0x2000, "MAP_LOCKED"},
	{0x4000, "MAP_NORESERVE"},
	{0x8000, "MAP_POPULATE"},
	{0x10000, "MAP_NONBLOCK"},
	{0x20000, "MAP_STACK"},
	{mapHugeTLB, "MAP_HUGETLB"},
	{0x80000, "MAP_SYNC"},
	{0x100000, "MAP_FIXED_NOREPLACE"},
}

// MapFlags names mmap(2) flags, e.g.
// "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_2MB". Unknown bits come
// last in hex; 0 is "0".
func MapFlags(flags uint64) string {
	var out []string
	if t := flags & mapType; t != 0 {
		if name, ok := mapTypes[t]; ok {
			out = append(out, name)
		} else {
			out = append(out, hexString(t))
		}
	}
	out, rest := appendFlags(out, flags&^mapType, mapFlags)
	// Bits 26-31 are the huge page size only with MAP_HUGETLB; bit 26
	// alone is otherwise MAP_UNINITIALIZED (honoured on no-MMU kernels).
	if flags&mapHugeTLB != 0 && rest&hugeSizeBits != 0 {
		out = append(out, hugeName("MAP_HUGE_", flags))
		rest &^= hugeSizeBits
	} else if rest&mapUninitialized != 0 {
		out = append(out, "MAP_UNINITIALIZED")
		rest &^= mapUninitialized
	}
	return join(out, rest)
}

func hexString(v uint64) string { return join(nil, v) }
