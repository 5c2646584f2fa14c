package main

import (
	"math"
	"math/rand"
	"sort"
)

// Intervals: a ratio's interval is t-based on the logs of the per-round
// ratios (the rounds pair the configurations: each ratio divides two runs
// of the same round), so it is the interval of the geometric mean. A
// difference (percentage points) is t-based on the per-round differences.
// Quantities that are ratios of excesses use a percentile bootstrap over
// rounds with a fixed seed.

// tQuantile975 is the 97.5% quantile of Student's t for df degrees of
// freedom.
func tQuantile975(df int) float64 {
	table := []float64{0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	switch {
	case df < 1:
		return math.NaN()
	case df < len(table):
		return table[df]
	case df < 60:
		return 2.00
	}
	return 1.96
}

// interval is an estimate with a 95% confidence interval.
type interval struct {
	est, lo, hi float64
	n           int
}

func meanSD(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, math.NaN()
	}
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

// tInterval is the mean of xs with its t-based 95% interval.
func tInterval(xs []float64) interval {
	if len(xs) == 0 {
		return interval{math.NaN(), math.NaN(), math.NaN(), 0}
	}
	m, sd := meanSD(xs)
	h := tQuantile975(len(xs)-1) * sd / math.Sqrt(float64(len(xs)))
	return interval{m, m - h, m + h, len(xs)}
}

// ratioInterval is the geometric mean of per-round ratios with the
// t-based interval of their logs, mapped back.
func ratioInterval(ratios []float64) interval {
	logs := make([]float64, len(ratios))
	for i, r := range ratios {
		logs[i] = math.Log(r)
	}
	iv := tInterval(logs)
	return interval{math.Exp(iv.est), math.Exp(iv.lo), math.Exp(iv.hi), iv.n}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// bootstrap resamples the rounds (indexes 0..n-1) and returns stat's
// estimate on all rounds and its 2.5–97.5 percentile interval.
func bootstrap(n int, stat func(idx []int) float64) interval {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	est := stat(all)
	rng := rand.New(rand.NewSource(1))
	const reps = 4000
	vals := make([]float64, 0, reps)
	idx := make([]int, n)
	for r := 0; r < reps; r++ {
		for i := range idx {
			idx[i] = rng.Intn(n)
		}
		if v := stat(idx); !math.IsNaN(v) && !math.IsInf(v, 0) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return interval{est, math.NaN(), math.NaN(), n}
	}
	sort.Float64s(vals)
	return interval{est, vals[int(0.025*float64(len(vals)))], vals[int(0.975*float64(len(vals)-1))], n}
}
