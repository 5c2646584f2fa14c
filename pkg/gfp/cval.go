package gfp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A cval and the operations on it are C's integer semantics for an LP64
// target (int 32 bits, long 64 bits): types, promotions, the usual
// arithmetic conversions, operators, casts and literals. expr.go parses;
// this file computes.

// cval is a C integer value: its bits, masked to width, and its type.
type cval struct {
	v      uint64
	width  uint // 8, 16, 32 or 64
	signed bool
}

var (
	cInt   = cval{width: 32, signed: true}
	cUint  = cval{width: 32}
	cLong  = cval{width: 64, signed: true}
	cUlong = cval{width: 64}
)

func mask(width uint) uint64 {
	if width >= 64 {
		return ^uint64(0)
	}
	return 1<<width - 1
}

// sext returns the value sign-extended to 64 bits when its type is signed.
func (c cval) sext() uint64 {
	if c.signed && c.width < 64 && c.v&(1<<(c.width-1)) != 0 {
		return c.v | ^mask(c.width)
	}
	return c.v
}

func (c cval) negative() bool { return c.signed && c.v&(1<<(c.width-1)) != 0 }

// to converts c to the type of t, as a C cast does.
func (c cval) to(t cval) cval {
	return cval{v: c.sext() & mask(t.width), width: t.width, signed: t.signed}
}

// promote applies the integer promotions: anything narrower than int
// becomes int.
func (c cval) promote() cval {
	if c.width < 32 {
		return c.to(cInt)
	}
	return c
}

// common applies the usual arithmetic conversions for LP64.
func common(a, b cval) (cval, cval) {
	a, b = a.promote(), b.promote()
	t := a
	switch {
	case a.width > b.width:
		t = a
	case b.width > a.width:
		t = b
	default:
		t = cval{width: a.width, signed: a.signed && b.signed}
	}
	t.v = 0
	return a.to(t), b.to(t)
}

func boolVal(b bool) cval {
	if b {
		return cval{v: 1, width: 32, signed: true}
	}
	return cInt
}

func applyBinary(op string, a, b cval) (cval, error) {
	switch op {
	case "&&":
		return boolVal(a.v != 0 && b.v != 0), nil
	case "||":
		return boolVal(a.v != 0 || b.v != 0), nil
	case "<<", ">>":
		a = a.promote()
		if b.negative() || b.v >= uint64(a.width) {
			return cval{}, fmt.Errorf("shift count %d out of range for %d-bit value", int64(b.sext()), a.width)
		}
		n := uint(b.v)
		if op == "<<" {
			a.v = (a.v << n) & mask(a.width)
		} else if a.negative() {
			a.v = uint64(int64(a.sext())>>n) & mask(a.width)
		} else {
			a.v >>= n
		}
		return a, nil
	}
	a, b = common(a, b)
	r := a
	switch op {
	case "|":
		r.v = a.v | b.v
	case "&":
		r.v = a.v & b.v
	case "^":
		r.v = a.v ^ b.v
	case "+":
		r.v = (a.v + b.v) & mask(a.width)
	case "-":
		r.v = (a.v - b.v) & mask(a.width)
	case "*":
		r.v = (a.v * b.v) & mask(a.width)
	case "/", "%":
		if b.v == 0 {
			return cval{}, errors.New("division by zero")
		}
		if a.signed {
			x, y := int64(a.sext()), int64(b.sext())
			if op == "/" {
				r.v = uint64(x/y) & mask(a.width)
			} else {
				r.v = uint64(x%y) & mask(a.width)
			}
		} else if op == "/" {
			r.v = a.v / b.v
		} else {
			r.v = a.v % b.v
		}
	case "==":
		return boolVal(a.v == b.v), nil
	case "!=":
		return boolVal(a.v != b.v), nil
	case "<", "<=", ">", ">=":
		var less, equal bool
		if a.signed {
			less, equal = int64(a.sext()) < int64(b.sext()), a.v == b.v
		} else {
			less, equal = a.v < b.v, a.v == b.v
		}
		switch op {
		case "<":
			return boolVal(less), nil
		case "<=":
			return boolVal(less || equal), nil
		case ">":
			return boolVal(!less && !equal), nil
		default:
			return boolVal(!less), nil
		}
	default:
		return cval{}, fmt.Errorf("%w: operator %q", errUnsupported, op)
	}
	return r, nil
}

// castType is the type a cast names.
func castType(words []string) cval {
	t := cval{width: 32, signed: true}
	longs := 0
	for _, w := range words {
		if td, ok := castTypedefs[w]; ok {
			t.width, t.signed = td.width, td.signed
			continue
		}
		switch w {
		case "unsigned":
			t.signed = false
		case "long":
			longs++
		case "short":
			t.width = 16
		case "char":
			t.width = 8
		case "bool", "_Bool":
			t = cval{width: 8}
		case "void":
			t = cUlong
		}
	}
	if longs > 0 {
		t.width = 64
	}
	return t
}

// parseNumber parses a C integer literal with its suffix and gives it C's
// type: the first of int, unsigned int, long, unsigned long that holds it,
// restricted by u/l suffixes and, for decimal literals, to signed types.
func parseNumber(lit string) (cval, error) {
	s := strings.ToLower(lit)
	digits := strings.TrimRight(s, "ul")
	suffix := s[len(digits):]
	unsignedSuffix := strings.Count(suffix, "u")
	longSuffix := strings.Count(suffix, "l")
	if unsignedSuffix > 1 || longSuffix > 2 || suffix == "lul" {
		return cval{}, fmt.Errorf("malformed integer literal %q", lit)
	}
	base := 10
	switch {
	case strings.HasPrefix(digits, "0x"):
		base, digits = 16, digits[2:]
	case strings.HasPrefix(digits, "0b"):
		base, digits = 2, digits[2:]
	case len(digits) > 1 && digits[0] == '0':
		base, digits = 8, digits[1:]
	}
	if digits == "" {
		return cval{}, fmt.Errorf("malformed integer literal %q", lit)
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if err != nil {
		return cval{}, fmt.Errorf("malformed integer literal %q", lit)
	}
	candidates := []cval{cInt, cUint, cLong, cUlong}
	for _, c := range candidates {
		if unsignedSuffix > 0 && c.signed {
			continue
		}
		if longSuffix > 0 && c.width < 64 {
			continue
		}
		if base == 10 && unsignedSuffix == 0 && !c.signed && c != cUlong {
			continue // decimal literals skip unsigned int
		}
		limit := mask(c.width)
		if c.signed {
			limit >>= 1
		}
		if v <= limit {
			c.v = v
			return c, nil
		}
	}
	return cval{v: v, width: 64}, nil
}
