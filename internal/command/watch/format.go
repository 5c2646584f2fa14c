package watch

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

// Result says what a huge-page call returned, as an operator reads it.
func Result(h *event.Hugetlb) string {
	if !h.OK {
		if h.Errno != "" {
			return h.Errno
		}
		return "errno " + strconv.FormatInt(-h.Result, 10)
	}
	if h.Call == event.CallShmget {
		return "shmid " + strconv.FormatInt(h.Result, 10)
	}
	return "0x" + strconv.FormatUint(uint64(h.Result), 16)
}

// joinOrders writes orders as "0,1,3".
func joinOrders[T ~uint32 | ~int32](orders []T) string {
	parts := make([]string, len(orders))
	for i, o := range orders {
		parts[i] = strconv.FormatInt(int64(o), 10)
	}
	return strings.Join(parts, ",")
}

// contexts writes "softirq 12, process 3", largest first.
func contexts(c map[event.Context]uint64) string {
	type kv struct {
		k event.Context
		v uint64
	}
	var list []kv
	for k, v := range c {
		list = append(list, kv{k, v})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].v != list[j].v {
			return list[i].v > list[j].v
		}
		return list[i].k < list[j].k
	})
	parts := make([]string, len(list))
	for i, e := range list {
		if len(list) == 1 {
			parts[i] = e.k.String()
		} else {
			parts[i] = fmt.Sprintf("%s %d", e.k, e.v)
		}
	}
	return strings.Join(parts, ", ")
}

// duration writes a time with three significant digits at most: "812µs",
// "4.1ms", "1.25s"; "0" for none.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Microsecond:
		return "<1µs"
	case d >= time.Duration(math.MaxInt64):
		return "∞"
	}
	units := []struct {
		name string
		size time.Duration
	}{{"s", time.Second}, {"ms", time.Millisecond}, {"µs", time.Microsecond}}
	for _, u := range units {
		if d >= u.size || u.size == time.Microsecond {
			v := float64(d) / float64(u.size)
			switch {
			case v >= 100:
				return strconv.FormatFloat(v, 'f', 0, 64) + u.name
			case v >= 10:
				return strconv.FormatFloat(v, 'f', 1, 64) + u.name
			default:
				return strconv.FormatFloat(v, 'f', 2, 64) + u.name
			}
		}
	}
	return d.String()
}

// below writes the upper bound of a histogram slot: "<4.10ms".
func below(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return "<" + duration(d)
}
