package view

import (
	"reflect"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/event"
)

type row struct {
	event.Task
	Count uint64
}

func countRow(r row) Count { return Count{Task: r.Task, N: r.Count} }

func TestRowsSortedLargestFirstThenPid(t *testing.T) {
	rows := RowsOf(countRow)
	in := []row{{event.Task{Pid: 3}, 1}, {event.Task{Pid: 2}, 5}, {event.Task{Pid: 1}, 1}}
	got, err := rows.Sorted(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []row{{event.Task{Pid: 2}, 5}, {event.Task{Pid: 1}, 1}, {event.Task{Pid: 3}, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sorted %v, want %v", got, want)
	}
	if in[0].Pid != 3 {
		t.Error("Sorted reordered the caller's rows")
	}
	// No rows (a family not attached) is an empty list, never null.
	if got, err := rows.Sorted(nil); err != nil || got == nil || len(got.([]row)) != 0 || got.([]row) == nil {
		t.Errorf("Sorted(nil) = %#v, %v; want an empty []row", got, err)
	}
	if _, err := rows.Counts([]event.AllocAggregate{{}}); err == nil || !strings.Contains(err.Error(), "want []view.row") {
		t.Errorf("rows of another type: %v", err)
	}
}

func TestRegisterRefusesWhatOutputsCannotUse(t *testing.T) {
	for name, f := range map[string]Family{
		"no signal":         {Table: "x", Rows: RowsOf(countRow)},
		"section, no rows":  {Signal: "t1", Section: "t1"},
		"counted twice":     {Signal: "t2", Rows: RowsOf(countRow), Event: func(*event.Event) (Count, bool) { return Count{}, false }},
		"table, no counts":  {Signal: "t3", Table: "T3"},
		"metric, no counts": {Signal: "t4", Metric: "t4"},
		"second alloc view": {Signal: event.SignalAlloc},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: registered", name)
				}
			}()
			Register(f)
		}()
	}
}

func TestFamiliesInSignalOrderThenRegistration(t *testing.T) {
	defer Register(Family{Signal: "zz", Section: "zz", Rows: RowsOf(countRow)})()
	defer Register(Family{Signal: "aa", Section: "aa", Rows: RowsOf(countRow)})()
	var got []event.Signal
	for _, f := range Families() {
		got = append(got, f.Signal)
	}
	want := []event.Signal{event.SignalAlloc, event.SignalExtfrag, event.SignalReclaim, event.SignalCompaction, event.SignalHugefault, "zz", "aa"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("families %v, want %v", got, want)
	}
}
