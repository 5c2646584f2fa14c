package kmsg

import "testing"

// Expressions compile on first use; compile them all here so a typo
// cannot wait for the first log line that reaches it.
func TestLazyRegexpsCompile(t *testing.T) {
	if len(lazyRegexps) < 38 {
		t.Fatalf("%d expressions registered, want at least 38", len(lazyRegexps))
	}
	for i, re := range lazyRegexps {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("expression %d: %v", i, r)
				}
			}()
			re()
		}()
	}
}
