package kmsg

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestReadRecords feeds the raw records as /dev/kmsg returns them, one
// per read, with an overwritten-records error and a KERN_CONT fragment.
func TestReadRecords(t *testing.T) {
	data, err := os.ReadFile("testdata/6.18-host.kmsg")
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for _, l := range bytes.SplitAfter(data, []byte("\n")) {
		if len(l) > 0 && l[0] == ' ' && len(recs) > 0 {
			recs[len(recs)-1] = append(recs[len(recs)-1], l...) // dictionary line
			continue
		}
		if len(l) > 0 {
			recs = append(recs, append([]byte(nil), l...))
		}
	}
	recs = append(recs, []byte("4,500,1176200000,c;frag \n"), []byte("4,501,1176200001,+;continued\n"))
	i, epipe := 0, true
	read := func(b []byte) (int, error) {
		if i == 3 && epipe {
			epipe = false
			return 0, errEPIPE
		}
		if i == len(recs) {
			return 0, errEAGAIN
		}
		n := copy(b, recs[i])
		i++
		return n, nil
	}
	boot := time.Date(2025, 11, 20, 21, 54, 0, 0, time.UTC)
	var lines []Record
	var r parsed
	p := Parser{Each: func(f Failure) { r.Reports = append(r.Reports, f) }}
	err = readRecords(context.Background(), read, boot, func(r Record) {
		lines = append(lines, r)
		p.Feed(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Result = p.Result()
	f := failures(t, r, 1)[0]
	if want := boot.Add(1176181446 * time.Microsecond); !f.Stamp.Wall.Equal(want) {
		t.Errorf("wall %v, want %v", f.Stamp.Wall, want)
	}
	if last := lines[len(lines)-1]; last.Text != "frag continued" || last.Seq != 500 {
		t.Errorf("last line = %+v, want the fragments joined", last)
	}
	// The Mem-Info record holds escaped newlines: one line each.
	found := false
	for _, l := range lines {
		if strings.TrimSpace(l.Text) == "kernel_misc_reclaimable:0" {
			found = true
		}
	}
	if !found {
		t.Error("multi-line record not split")
	}
}

func TestDevKmsgLive(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the running kernel's log")
	}
	var n int
	err := ReadDevKmsg(context.Background(), DevKmsg, time.Now(), func(Record) { n++ })
	if IsPermission(err) || os.IsNotExist(err) {
		t.Skipf("cannot read %s here: %v", DevKmsg, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("no records")
	}
}
