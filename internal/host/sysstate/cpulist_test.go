package sysstate

import (
	"reflect"
	"testing"
)

func TestParseList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
		bad  bool
	}{
		{"0-3,8", []int{0, 1, 2, 3, 8}, false},
		{"0-3,8,10-11", []int{0, 1, 2, 3, 8, 10, 11}, false},
		{"5\n", []int{5}, false},
		{"", nil, false},
		{"3-1", nil, true},
		{"x", nil, true},
		{"0-99999999", nil, true},
		{"0-99999999999", nil, true},
		{"-1", nil, true},
		{",", nil, true},
	} {
		got, err := ParseList(c.in, 1<<16)
		if (err != nil) != c.bad || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseList(%q) = %v, %v", c.in, got, err)
		}
	}
}

func FuzzParseList(f *testing.F) {
	for _, s := range []string{"0", "0-1", "0-3,8,10-11", "", "1-0", "0-99999999999", "-", ","} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseList(s, 1024); err == nil && len(v) > 1024 {
			t.Errorf("%d entries", len(v))
		}
	})
}
