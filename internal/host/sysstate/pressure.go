package sysstate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Pressure is /proc/pressure/memory (PSI, Linux 4.20+ with psi enabled):
// the share of wall time in which some task (Some), or every non-idle
// task (Full), was stalled on memory, averaged over 10, 60 and 300
// seconds, in percent; and the cumulative stall time in microseconds.
type Pressure struct {
	SomeAvg10   float64 `json:"some_avg10"`
	SomeAvg60   float64 `json:"some_avg60"`
	SomeAvg300  float64 `json:"some_avg300"`
	SomeTotalUs uint64  `json:"some_total_us"`
	FullAvg10   float64 `json:"full_avg10"`
	FullAvg60   float64 `json:"full_avg60"`
	FullAvg300  float64 `json:"full_avg300"`
	FullTotalUs uint64  `json:"full_total_us"`
}

// ReadPressure reads the memory pressure of procRoot. A kernel without
// PSI (or booted with psi=0) has no such file: the error wraps
// fs.ErrNotExist, or says the file cannot be read (EOPNOTSUPP).
func ReadPressure(procRoot string) (Pressure, error) {
	path := filepath.Join(procRoot, "pressure", "memory")
	b, err := os.ReadFile(path)
	if err != nil {
		return Pressure{}, fileError(path, err)
	}
	p, err := ParsePressure(b)
	if err != nil {
		return Pressure{}, fileError(path, err)
	}
	return p, nil
}

// ParsePressure parses the two lines of a PSI file:
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//
// The "full" line is absent before 5.13 for some resources but always
// present for memory; both are required here.
func ParsePressure(data []byte) (Pressure, error) {
	var p Pressure
	seen := map[string]bool{}
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data = nextLine(data)
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		fields := bytes.Fields(line)
		kind := string(fields[0])
		var avg10, avg60, avg300 *float64
		var total *uint64
		switch kind {
		case "some":
			avg10, avg60, avg300, total = &p.SomeAvg10, &p.SomeAvg60, &p.SomeAvg300, &p.SomeTotalUs
		case "full":
			avg10, avg60, avg300, total = &p.FullAvg10, &p.FullAvg60, &p.FullAvg300, &p.FullTotalUs
		default:
			return p, errAtLine(n, "unknown line kind %q", truncate(fields[0]))
		}
		if seen[kind] {
			return p, errAtLine(n, "second %q line", kind)
		}
		seen[kind] = true
		got := map[string]bool{}
		for _, f := range fields[1:] {
			k, v, ok := bytes.Cut(f, []byte("="))
			if !ok {
				return p, errAtLine(n, "field %q is not key=value", truncate(f))
			}
			var err error
			switch string(k) {
			case "avg10":
				*avg10, err = parsePercent(v)
			case "avg60":
				*avg60, err = parsePercent(v)
			case "avg300":
				*avg300, err = parsePercent(v)
			case "total":
				*total, err = strconv.ParseUint(string(v), 10, 64)
			default:
				continue // a field a later kernel may add
			}
			if err != nil {
				return p, errAtLine(n, "%s: %v", k, err)
			}
			got[string(k)] = true
		}
		for _, k := range []string{"avg10", "avg60", "avg300", "total"} {
			if !got[k] {
				return p, errAtLine(n, "%s line has no %s", kind, k)
			}
		}
	}
	if !seen["some"] || !seen["full"] {
		return p, fmt.Errorf("want a some and a full line")
	}
	return p, nil
}

func parsePercent(b []byte) (float64, error) {
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, fmt.Errorf("%q is not a percentage", truncate(b))
	}
	return v, nil
}
