package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// row is one raw measurement; the CSV holds every row of a run.
type row struct {
	phase, workload, config string
	round, seq              int
	metric                  string
	value                   float64
	unit                    string
}

type results struct{ rows []row }

func (r *results) add(phase, workload, config string, round, seq int, metric string, value float64, unit string) {
	r.rows = append(r.rows, row{phase, workload, config, round, seq, metric, value, unit})
}

// values returns the values of one metric keyed by round.
func (r *results) values(phase, workload, config, metric string) map[int]float64 {
	out := map[int]float64{}
	for _, x := range r.rows {
		if x.phase == phase && x.workload == workload && x.config == config && x.metric == metric {
			out[x.round] = x.value
		}
	}
	return out
}

func (r *results) writeCSV(path string) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"phase", "workload", "config", "round", "seq", "metric", "value", "unit"})
	for _, x := range r.rows {
		w.Write([]string{x.phase, x.workload, x.config, strconv.Itoa(x.round), strconv.Itoa(x.seq),
			x.metric, strconv.FormatFloat(x.value, 'g', 10, 64), x.unit})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(path+".tmp", path)
}

// readCSV loads the rows of an earlier run's results.csv.
func readCSV(path string) (*results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	r := &results{}
	for i, rec := range recs {
		if i == 0 || len(rec) != 8 {
			continue
		}
		round, _ := strconv.Atoi(rec[3])
		seq, _ := strconv.Atoi(rec[4])
		v, err := strconv.ParseFloat(rec[6], 64)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		r.rows = append(r.rows, row{rec[0], rec[1], rec[2], round, seq, rec[5], v, rec[7]})
	}
	return r, nil
}

// renderFromCSV writes summary.md for an earlier run, from its CSV alone.
func renderFromCSV(csvPath, outDir string) error {
	res, err := readCSV(csvPath)
	if err != nil {
		return err
	}
	e := &env{res: *res, forcedStops: map[string]int{}}
	for _, x := range res.rows {
		if x.phase != "meta" {
			continue
		}
		switch x.metric {
		case "memtrace_version":
			e.version = x.config
		case "memtrace_mode":
			e.mode = x.config
		case "run_mode":
			e.quick = x.config == "quick"
		case "forced_stop":
			e.forcedStops[x.config]++
		}
	}
	return os.WriteFile(filepath.Join(outDir, "summary.md"), []byte(e.summary()), 0o644)
}
