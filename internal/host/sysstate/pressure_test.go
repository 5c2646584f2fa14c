package sysstate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePressure(t *testing.T) {
	p, err := ParsePressure([]byte("some avg10=12.50 avg60=3.01 avg300=0.70 total=2062144\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=905251\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Pressure{SomeAvg10: 12.5, SomeAvg60: 3.01, SomeAvg300: 0.7, SomeTotalUs: 2062144, FullAvg10: 1, FullTotalUs: 905251}
	if p != want {
		t.Errorf("got %+v, want %+v", p, want)
	}
}

func TestParsePressureBad(t *testing.T) {
	for _, in := range []string{
		"",
		"some avg10=1.00 avg60=0.00 avg300=0.00 total=1\n",                                              // no full line
		"some avg10=1.00 avg60=0.00 total=1\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=1\n",          // no avg300
		"some avg10=x avg60=0.00 avg300=0.00 total=1\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=1\n", // not a number
		"some avg10=101 avg60=0.00 avg300=0.00 total=1\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=1\n",
		"most avg10=1 avg60=0.00 avg300=0.00 total=1\n",
		"some avg10\n",
	} {
		if p, err := ParsePressure([]byte(in)); err == nil {
			t.Errorf("%q: parsed as %+v, want an error", in, p)
		}
	}
}

// TestReadPressureHost reads this host's file where PSI is on, and names
// the file when it is missing.
func TestReadPressureHost(t *testing.T) {
	if _, err := os.Stat("/proc/pressure/memory"); err == nil {
		if _, err := ReadPressure("/proc"); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	_, err := ReadPressure(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "pressure", "memory")) {
		t.Errorf("missing file: %v, want an error naming it", err)
	}
}
