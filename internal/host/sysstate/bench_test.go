package sysstate

import (
	"os"
	"testing"
	"time"
)

func skipWithoutProc(b *testing.B) {
	if _, err := os.Stat("/proc/buddyinfo"); err != nil {
		b.Skip("no /proc/buddyinfo")
	}
}

// BenchmarkReaderTake is what "memtrace watch" pays each second when it
// wants fresh watermarks.
func BenchmarkReaderTake(b *testing.B) {
	skipWithoutProc(b)
	r, err := NewReader("/proc", "/sys")
	if err != nil {
		b.Fatal(err)
	}
	r.Take() // pagetypeinfo, once
	b.ReportAllocs()
	for b.Loop() {
		r.Take()
	}
}

// BenchmarkReaderTakeCachedWatermarks is the same with zoneinfo re-read at
// most every 10 s.
func BenchmarkReaderTakeCachedWatermarks(b *testing.B) {
	skipWithoutProc(b)
	r, err := NewReader("/proc", "/sys")
	if err != nil {
		b.Fatal(err)
	}
	r.WatermarkMaxAge = 10 * time.Second
	r.Take()
	b.ReportAllocs()
	for b.Loop() {
		r.Take()
	}
}

// BenchmarkTake is a one-shot snapshot, pagetypeinfo included (before and
// after a capture).
func BenchmarkTake(b *testing.B) {
	skipWithoutProc(b)
	b.ReportAllocs()
	for b.Loop() {
		Take("/proc", "/sys")
	}
}

// Parts, to see where the time goes.
func BenchmarkPartVmstat(b *testing.B) {
	skipWithoutProc(b)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if _, buf, err = readVmstat("/proc", buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPartWatermarks(b *testing.B) {
	skipWithoutProc(b)
	r, _ := NewReader("/proc", "/sys")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := readWatermarks(r.fs, "/proc"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPartHugePools(b *testing.B) {
	skipWithoutProc(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := readHugePools("/sys"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPartSysctl(b *testing.B) {
	skipWithoutProc(b)
	r, _ := NewReader("/proc", "/sys")
	b.ReportAllocs()
	for b.Loop() {
		readSysctl(r.fs, "/proc")
	}
}
