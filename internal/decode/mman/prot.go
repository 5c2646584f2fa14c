package mman

var protFlags = []flagName{
	{0x1, "PROT_READ"},
	{0x2, "PROT_WRITE"},
	{0x4, "PROT_EXEC"},
	{0x8, "PROT_SEM"},
	{0x10, "PROT_BTI"}, // arm64 only
	{0x20, "PROT_MTE"}, // arm64 only
	{0x01000000, "PROT_GROWSDOWN"},
	{0x02000000, "PROT_GROWSUP"},
}

// ProtFlags names mmap(2)/mprotect(2) protection bits, e.g.
// "PROT_READ|PROT_WRITE"; 0 is "PROT_NONE".
func ProtFlags(prot uint64) string {
	if prot == 0 {
		return "PROT_NONE"
	}
	out, rest := appendFlags(nil, prot, protFlags)
	return join(out, rest)
}
