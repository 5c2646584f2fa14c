package main

import (
	"math"
	"os"
	"testing"
)

// TestReadWatchSumsRecentByPid: memtrace's counts are the sum of each
// summary row's failures in its interval, for the phase's comm only; event
// lines are skipped and a line that is not JSON is counted, not fatal.
func TestReadWatchSumsRecentByPid(t *testing.T) {
	lines := `{"kind":"summary","alloc_failures":[{"pid":10,"comm":"mt-longprocs","recent":1,"total":1},{"pid":11,"comm":"postgres","recent":5,"total":5}]}
{"signal":"alloc","pid":10,"comm":"mt-longprocs","order":2}
{"kind":"summary","alloc_failures":[{"pid":10,"comm":"mt-longprocs","recent":0,"total":1},{"pid":12,"comm":"mt-longprocs","recent":2,"total":2}]}
not json
{"kind":"summary","alloc_failures":[{"pid":10,"comm":"mt-longprocs","recent":3,"total":3}]}
`
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *procsTally, 1)
	go readWatch(r, done)
	if _, err := w.WriteString(lines); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got := <-done
	// pid 10's last row (recent 3) is a later process with the same pid
	// (its total restarted after the first aged out): the sums add up.
	want := map[uint32]uint64{10: 4, 12: 2}
	if len(got.recent) != len(want) || got.recent[10] != want[10] || got.recent[12] != want[12] {
		t.Errorf("recent = %v, want %v", got.recent, want)
	}
	if got.lines != 5 || got.summaries != 3 || got.badLines != 1 || got.rows != 2 {
		t.Errorf("lines %d summaries %d bad %d rows %d, want 5 3 1 2", got.lines, got.summaries, got.badLines, got.rows)
	}
	if got.bytes != int64(len(lines)) {
		t.Errorf("bytes = %d, want %d", got.bytes, len(lines))
	}
}

func TestSlope(t *testing.T) {
	xs := []float64{0, 1, 2, 3, 4}
	exact := slope(xs, []float64{5, 7, 9, 11, 13})
	if exact.est != 2 || exact.lo != 2 || exact.hi != 2 || exact.n != 5 {
		t.Errorf("exact line: %+v, want slope 2 with no spread", exact)
	}
	noisy := slope(xs, []float64{5, 5.5, 5, 5.5, 5})
	if math.Abs(noisy.est) > 1e-9 || noisy.lo >= 0 || noisy.hi <= 0 {
		t.Errorf("flat noisy line: %+v, want slope 0 inside its interval", noisy)
	}
	if s := slope(xs[:2], []float64{1, 2}); s.n != 2 || s.est != 0 {
		t.Errorf("two points: %+v, want no fit", s)
	}
}
