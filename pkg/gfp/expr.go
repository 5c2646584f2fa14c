package gfp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The masks in a print fmt are C constant expressions after macro expansion,
// e.g. "(( gfp_t)((((1UL))) << (10))|((((1UL))) << (11)))" or
// "((( gfp_t)0x20u)|(( gfp_t)0x200u))". They are evaluated with C's integer
// rules for an LP64 target (int 32 bits, long 64 bits), because casts like
// "( gfp_t)" truncate and "~" depends on the operand's width.

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

// maxDepth bounds nesting so hostile input cannot recurse without limit.
const maxDepth = 200

var errUnsupported = errors.New("unsupported construct")

// exprParser evaluates a token slice by precedence climbing.
type exprParser struct {
	toks  []token
	pos   int
	env   map[string]uint64 // enum constants the expression may name
	depth int
}

// evalExpr evaluates a complete C constant expression.
func evalExpr(toks []token, env map[string]uint64) (uint64, error) {
	if len(toks) == 0 {
		return 0, errors.New("empty expression")
	}
	p := &exprParser{toks: toks, env: env}
	v, err := p.ternary()
	if err != nil {
		return 0, err
	}
	if p.pos != len(p.toks) {
		return 0, fmt.Errorf("unexpected %s after expression", p.toks[p.pos])
	}
	return v.v, nil
}

func (p *exprParser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

func (p *exprParser) accept(punct string) bool {
	if t, ok := p.peek(); ok && t.is(tokPunct, punct) {
		p.pos++
		return true
	}
	return false
}

func (p *exprParser) expect(punct string) error {
	if p.accept(punct) {
		return nil
	}
	if t, ok := p.peek(); ok {
		return fmt.Errorf("expected %q, found %s", punct, t)
	}
	return fmt.Errorf("expected %q, found end of expression", punct)
}

func (p *exprParser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return errors.New("expression nested too deeply")
	}
	return nil
}

func (p *exprParser) leave() { p.depth-- }

// ternary parses "cond ? a : b", the lowest precedence level we support
// (the comma operator never appears inside a flag mask).
func (p *exprParser) ternary() (cval, error) {
	if err := p.enter(); err != nil {
		return cval{}, err
	}
	defer p.leave()
	cond, err := p.binary(1)
	if err != nil {
		return cval{}, err
	}
	if !p.accept("?") {
		return cond, nil
	}
	a, err := p.ternary()
	if err != nil {
		return cval{}, err
	}
	if err := p.expect(":"); err != nil {
		return cval{}, err
	}
	b, err := p.ternary()
	if err != nil {
		return cval{}, err
	}
	a, b = common(a, b)
	if cond.v != 0 {
		return a, nil
	}
	return b, nil
}

// binaryPrec gives C's precedence for the binary operators, higher binds
// tighter.
var binaryPrec = map[string]int{
	"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5,
	"==": 6, "!=": 6,
	"<": 7, "<=": 7, ">": 7, ">=": 7,
	"<<": 8, ">>": 8,
	"+": 9, "-": 9,
	"*": 10, "/": 10, "%": 10,
}

func (p *exprParser) binary(minPrec int) (cval, error) {
	lhs, err := p.unary()
	if err != nil {
		return cval{}, err
	}
	for {
		t, ok := p.peek()
		if !ok || t.kind != tokPunct {
			return lhs, nil
		}
		prec, isOp := binaryPrec[t.text]
		if !isOp || prec < minPrec {
			return lhs, nil
		}
		p.pos++
		if err := p.enter(); err != nil {
			return cval{}, err
		}
		rhs, err := p.binary(prec + 1) // all binary operators are left-associative
		p.leave()
		if err != nil {
			return cval{}, err
		}
		if lhs, err = applyBinary(t.text, lhs, rhs); err != nil {
			return cval{}, err
		}
	}
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

func (p *exprParser) unary() (cval, error) {
	if err := p.enter(); err != nil {
		return cval{}, err
	}
	defer p.leave()
	t, ok := p.peek()
	if !ok {
		return cval{}, errors.New("unexpected end of expression")
	}
	if t.kind == tokPunct {
		switch t.text {
		case "~", "-", "+", "!":
			p.pos++
			v, err := p.unary()
			if err != nil {
				return cval{}, err
			}
			v = v.promote()
			switch t.text {
			case "~":
				v.v = ^v.v & mask(v.width)
			case "-":
				v.v = -v.v & mask(v.width)
			case "!":
				v = boolVal(v.v == 0)
			}
			return v, nil
		case "(":
			if typ, n, isCast := p.castAt(p.pos); isCast {
				p.pos += n
				v, err := p.unary()
				if err != nil {
					return cval{}, err
				}
				return v.to(typ), nil
			}
			p.pos++
			v, err := p.ternary()
			if err != nil {
				return cval{}, err
			}
			return v, p.expect(")")
		}
	}
	return p.primary()
}

func (p *exprParser) primary() (cval, error) {
	t, _ := p.peek()
	p.pos++
	switch t.kind {
	case tokNumber:
		return parseNumber(t.text)
	case tokChar:
		if len(t.text) == 0 {
			return cval{}, errors.New("empty character literal")
		}
		return cval{v: uint64(t.text[0]), width: 32, signed: true}, nil
	case tokIdent:
		if t.text == "sizeof" {
			return cval{}, fmt.Errorf("%w: sizeof", errUnsupported)
		}
		v, ok := p.env[t.text]
		if !ok {
			return cval{}, fmt.Errorf("unknown identifier %q", t.text)
		}
		if v <= 0x7fffffff {
			return cval{v: v, width: 32, signed: true}, nil // enum constants are int
		}
		return cval{v: v, width: 64}, nil
	}
	return cval{}, fmt.Errorf("unexpected %s", t)
}

// castTypes maps the words that may appear inside a cast to the integer type
// they name. Qualifiers and sparse annotations map to nothing.
var castWords = map[string]bool{
	"unsigned": true, "signed": true, "long": true, "int": true, "short": true, "char": true,
	"void": true, "const": true, "volatile": true, "__force": true, "__bitwise": true,
	"bool": true, "_Bool": true,
}

// castTypedefs are the typedefs kernel tracepoints cast flag values to.
var castTypedefs = map[string]cval{
	"gfp_t": cUint, "uint": cUint, "u32": cUint, "__u32": cUint, "uint32_t": cUint,
	"s32": cInt, "__s32": cInt, "int32_t": cInt,
	"ulong": cUlong, "size_t": cUlong, "uintptr_t": cUlong, "u64": cUlong, "__u64": cUlong, "uint64_t": cUlong,
	"ssize_t": cLong, "s64": cLong, "__s64": cLong, "int64_t": cLong,
	"u16": {width: 16}, "__u16": {width: 16}, "uint16_t": {width: 16},
	"s16": {width: 16, signed: true}, "__s16": {width: 16, signed: true}, "int16_t": {width: 16, signed: true},
	"u8": {width: 8}, "__u8": {width: 8}, "uint8_t": {width: 8},
	"s8": {width: 8, signed: true}, "__s8": {width: 8, signed: true}, "int8_t": {width: 8, signed: true},
}

// castAt reports whether the "(" at i opens a cast, and if so its target type
// and the number of tokens it spans. "(FOO)" with an unknown FOO is a
// parenthesised expression, not a cast: only type words count.
func (p *exprParser) castAt(i int) (cval, int, bool) {
	var words []string
	pointer := false
	j := i + 1
	for ; j < len(p.toks); j++ {
		t := p.toks[j]
		if t.is(tokPunct, ")") {
			break
		}
		switch {
		case t.is(tokPunct, "*"):
			pointer = true
		case t.kind == tokIdent && !pointer && (castWords[t.text] || castTypedefs[t.text].width != 0):
			words = append(words, t.text)
		default:
			return cval{}, 0, false
		}
	}
	if j >= len(p.toks) || len(words) == 0 {
		return cval{}, 0, false
	}
	n := j - i + 1
	if pointer {
		return cUlong, n, true
	}
	return castType(words), n, true
}

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
