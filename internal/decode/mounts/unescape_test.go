package mounts

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"/sys/kernel/tracing": "/sys/kernel/tracing",
		`/mnt/huge\040pages`:  "/mnt/huge pages",
		`/a\011b\012c\134d`:   "/a\tb\nc\\d",
		`/trailing\04`:        `/trailing\04`,
		`/not\999octal`:       `/not\999octal`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzUnescape(f *testing.F) {
	f.Add(`/a\040b\`)
	f.Fuzz(func(t *testing.T, s string) {
		if len(Unescape(s)) > len(s) {
			t.Fatalf("Unescape(%q) grew", s)
		}
	})
}
