package event

import (
	"testing"
	"time"
)

func TestStallHistogramQuantile(t *testing.T) {
	// 90 stalls under 2 µs, 9 in [4, 8) µs, 1 in [2^20, 2^21) µs.
	h := make(StallHistogram, 21)
	h[0], h[2], h[20] = 90, 9, 1
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 2 * time.Microsecond},
		{0.9, 2 * time.Microsecond},
		{0.91, 8 * time.Microsecond},
		{0.99, 8 * time.Microsecond},
		{1, (2 << 20) * time.Microsecond},
		{0, 2 * time.Microsecond},
	} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("q %v: %v, want %v", c.q, got, c.want)
		}
	}
	if h.Count() != 100 {
		t.Errorf("count %d", h.Count())
	}
	if got := StallHistogram(nil).Quantile(0.99); got != 0 {
		t.Errorf("empty histogram: %v", got)
	}
	// The last slot is open-ended.
	last := make(StallHistogram, 32)
	last[31] = 1
	if got := last.Quantile(0.5); got <= time.Hour {
		t.Errorf("open-ended slot: %v", got)
	}
}
