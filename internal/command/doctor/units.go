package doctor

import (
	"fmt"
	"math"
	"time"

	"github.com/memtrace/memtrace/internal/present/text"
)

// kb formats a size given in kB ("512 KiB", "35.7 MiB", "1.0 MiB" for
// 1.04 MiB): doctor's reports keep a decimal that rounds to zero.
func kb(v uint64) string { return size(v << 10) }

// size formats a byte count in doctor's style (text.TrimWhole).
func size(b uint64) string { return text.Bytes(b, text.TrimWhole) }

// trim prints at most one decimal, none when it is .0 or the number is
// large.
func trim(v float64) string {
	if v >= 100 || v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func pct(part, whole float64) string {
	if whole <= 0 {
		return "?"
	}
	p := 100 * part / whole
	if p > 0 && p < 0.1 {
		return "<0.1%"
	}
	return trim(p) + "%"
}

// duration formats for humans: "3d4h", "2h13m", "41s".
func duration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, (d%time.Minute)/time.Second)
	}
	return d.Round(100 * time.Millisecond).String()
}

// rate formats n events over d as a rate per second, minute or hour,
// whichever reads best.
func rate(n float64, d time.Duration) string {
	if d <= 0 {
		return "?"
	}
	s := n / d.Seconds()
	switch {
	case n == 0:
		return "0"
	case s >= 1:
		return trim(s) + "/s"
	case s*60 >= 1:
		return trim(s*60) + "/min"
	case s*3600 >= 1:
		return trim(s*3600) + "/h"
	}
	return trim(s*86400) + "/day"
}

// times says "once", "twice", "N times".
func times(n uint64) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

func plural(n uint64) string {
	if n == 1 {
		return ""
	}
	return "s"
}
