package main

import (
	"encoding/csv"
	"fmt"
	"os"
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
