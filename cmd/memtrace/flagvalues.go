package main

import (
	"fmt"
	"strings"

	"github.com/memtrace/memtrace/internal/event"
)

// signalsValue is a pflag.Value for --signals alloc,extfrag,hugetlb.
type signalsValue struct{ signals *[]event.Signal }

func (v signalsValue) String() string {
	if v.signals == nil {
		return ""
	}
	var s []string
	for _, x := range *v.signals {
		s = append(s, string(x))
	}
	return strings.Join(s, ",")
}

func (v signalsValue) Set(s string) error {
	sig, err := event.ParseSignals(s)
	if err != nil {
		return err
	}
	*v.signals = sig
	return nil
}

func (signalsValue) Type() string { return "list" }

// choiceValue is a pflag.Value that accepts one of a fixed set of words.
type choiceValue struct {
	val     *string
	choices []string
}

func (v choiceValue) String() string {
	if v.val == nil {
		return ""
	}
	return *v.val
}

func (v choiceValue) Set(s string) error {
	for _, c := range v.choices {
		if s == c {
			*v.val = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(v.choices, ", "))
}

func (v choiceValue) Type() string { return "string" }
