package gfp

import (
	"errors"
	"fmt"
)

// The masks in a print fmt are C constant expressions after macro expansion,
// e.g. "(( gfp_t)((((1UL))) << (10))|((((1UL))) << (11)))" or
// "((( gfp_t)0x20u)|(( gfp_t)0x200u))". They are evaluated with C's integer
// rules for an LP64 target (int 32 bits, long 64 bits), because casts like
// "( gfp_t)" truncate and "~" depends on the operand's width.

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
