package sysstate

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PageblockOrderFromFormat evaluates the argument printed as
// "pageblock_order=%d" in a tracepoint's format file, e.g.
//
//	(((unsigned int)((21 - 12))) < ((unsigned int)(10)) ? ((unsigned int)((21 - 12))) : ((unsigned int)(10)))
//
// for min(HUGETLB_PAGE_ORDER, MAX_PAGE_ORDER). Only integer constants,
// casts and C's arithmetic, comparison and conditional operators are
// understood: a kernel whose pageblock_order is a variable (powerpc) or
// whose format differs gives an error, and the caller reads
// /proc/pagetypeinfo instead.
func PageblockOrderFromFormat(format []byte) (int, error) {
	_, fmtLine, ok := bytes.Cut(format, []byte("\nprint fmt: "))
	if !ok {
		return 0, errors.New("no print fmt line")
	}
	fmtLine, _, _ = bytes.Cut(fmtLine, []byte("\n"))
	// The format string, then its arguments.
	if len(fmtLine) == 0 || fmtLine[0] != '"' {
		return 0, errors.New("print fmt does not start with a string")
	}
	end := bytes.IndexByte(fmtLine[1:], '"')
	if end < 0 {
		return 0, errors.New("print fmt string not terminated")
	}
	str, rest := string(fmtLine[1:1+end]), string(fmtLine[2+end:])
	at := strings.Index(str, "pageblock_order=%")
	if at < 0 {
		return 0, errors.New("print fmt has no pageblock_order")
	}
	n := strings.Count(str[:at], "%") - 2*strings.Count(str[:at], "%%")
	args := splitArgs(rest)
	if n >= len(args) {
		return 0, fmt.Errorf("print fmt has %d arguments, pageblock_order is number %d", len(args), n+1)
	}
	v, err := evalConst(args[n])
	if err != nil {
		return 0, fmt.Errorf("evaluating pageblock_order %q: %w", truncate([]byte(args[n])), err)
	}
	if v < 0 || v > 30 {
		return 0, fmt.Errorf("pageblock_order evaluates to %d, not an order", v)
	}
	return int(v), nil
}

// splitArgs splits ", a, f(b, c)" at the commas outside parentheses.
func splitArgs(s string) []string {
	var args []string
	depth, start := 0, -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				if start >= 0 {
					args = append(args, strings.TrimSpace(s[start:i]))
				}
				start = i + 1
			}
		}
	}
	if start >= 0 {
		args = append(args, strings.TrimSpace(s[start:]))
	}
	return args
}

// evalConst evaluates a constant C expression of integers.
func evalConst(s string) (int64, error) {
	p := &constParser{toks: tokenize(s)}
	v, err := p.ternary()
	if err != nil {
		return 0, err
	}
	if p.pos != len(p.toks) {
		return 0, fmt.Errorf("unexpected %q", p.toks[p.pos])
	}
	return v, nil
}

func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case isIdent(c) || (c >= '0' && c <= '9'):
			j := i
			for j < len(s) && (isIdent(s[j]) || (s[j] >= '0' && s[j] <= '9')) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		case i+1 < len(s) && twoCharOps[s[i:i+2]]:
			toks = append(toks, s[i:i+2])
			i += 2
		default:
			toks = append(toks, s[i:i+1])
			i++
		}
	}
	return toks
}

var twoCharOps = map[string]bool{"<<": true, ">>": true, "<=": true, ">=": true, "==": true, "!=": true, "&&": true, "||": true}

func isIdent(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }

// castWords are what a cast to an integer type is made of.
var castWords = map[string]bool{"unsigned": true, "signed": true, "int": true, "long": true, "short": true, "char": true}

type constParser struct {
	toks []string
	pos  int
}

func (p *constParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *constParser) ternary() (int64, error) {
	c, err := p.binary(0)
	if err != nil || p.peek() != "?" {
		return c, err
	}
	p.pos++
	a, err := p.ternary()
	if err != nil {
		return 0, err
	}
	if p.peek() != ":" {
		return 0, errors.New("? without :")
	}
	p.pos++
	b, err := p.ternary()
	if err != nil {
		return 0, err
	}
	if c != 0 {
		return a, nil
	}
	return b, nil
}

// binaryOps by precedence, loosest first.
var binaryOps = [][]string{{"||"}, {"&&"}, {"==", "!="}, {"<", ">", "<=", ">="}, {"<<", ">>"}, {"+", "-"}, {"*", "/"}}

func (p *constParser) binary(level int) (int64, error) {
	if level == len(binaryOps) {
		return p.unary()
	}
	v, err := p.binary(level + 1)
	for err == nil {
		op := p.peek()
		found := false
		for _, o := range binaryOps[level] {
			found = found || o == op
		}
		if !found {
			break
		}
		p.pos++
		var r int64
		if r, err = p.binary(level + 1); err == nil {
			v, err = apply(op, v, r)
		}
	}
	return v, err
}

func apply(op string, a, b int64) (int64, error) {
	t := func(c bool) int64 {
		if c {
			return 1
		}
		return 0
	}
	switch op {
	case "||":
		return t(a != 0 || b != 0), nil
	case "&&":
		return t(a != 0 && b != 0), nil
	case "==":
		return t(a == b), nil
	case "!=":
		return t(a != b), nil
	case "<":
		return t(a < b), nil
	case ">":
		return t(a > b), nil
	case "<=":
		return t(a <= b), nil
	case ">=":
		return t(a >= b), nil
	case "<<", ">>":
		if b < 0 || b > 62 {
			return 0, fmt.Errorf("shift by %d", b)
		}
		if op == "<<" {
			return a << b, nil
		}
		return a >> b, nil
	case "+":
		return a + b, nil
	case "-":
		return a - b, nil
	case "*":
		return a * b, nil
	case "/":
		if b == 0 {
			return 0, errors.New("division by zero")
		}
		return a / b, nil
	}
	return 0, fmt.Errorf("operator %q", op)
}

func (p *constParser) unary() (int64, error) {
	switch tok := p.peek(); {
	case tok == "-":
		p.pos++
		v, err := p.unary()
		return -v, err
	case tok == "(":
		p.pos++
		if castWords[p.peek()] {
			for castWords[p.peek()] {
				p.pos++
			}
			if p.peek() != ")" {
				return 0, errors.New("unterminated cast")
			}
			p.pos++
			return p.unary()
		}
		v, err := p.ternary()
		if err != nil {
			return 0, err
		}
		if p.peek() != ")" {
			return 0, errors.New("unbalanced parentheses")
		}
		p.pos++
		return v, nil
	case tok == "":
		return 0, errors.New("expression ends early")
	case tok[0] >= '0' && tok[0] <= '9':
		p.pos++
		v, err := strconv.ParseInt(strings.TrimRight(tok, "uUlL"), 0, 64)
		if err != nil {
			return 0, fmt.Errorf("number %q", tok)
		}
		return v, nil
	default:
		return 0, fmt.Errorf("%q is not a constant", tok)
	}
}
