package gfp

import (
	"errors"
	"fmt"
	"strings"
)

// FromFormat builds a table from a tracepoint format, either the whole
// events/kmem/mm_page_alloc/format file or just its "print fmt:" text. The
// flag names are the {mask, "NAME"} pairs of its __print_flags() call; the
// masks are the kernel's macros already expanded to C constant expressions.
func FromFormat(format string) (*Table, error) {
	return fromFormat(format, nil, "tracepoint format")
}

// fromFormat is FromFormat with values for identifiers the masks may still
// contain: 6.10 to 6.13 kernels print ___GFP_*_BIT enum names there instead
// of numbers, and kernel BTF knows their values.
func fromFormat(format string, env map[string]uint64, source string) (*Table, error) {
	t, err := parsePrintFlags(format, env, source)
	if err != nil {
		return nil, fmt.Errorf("parsing print fmt: %w", err)
	}
	return t, nil
}

func parsePrintFlags(format string, env map[string]uint64, source string) (*Table, error) {
	if i := strings.Index(format, "print fmt:"); i >= 0 {
		format = format[i+len("print fmt:"):]
	}
	toks, err := tokenize(format)
	if err != nil {
		return nil, err
	}
	call, err := findGFPCall(toks)
	if err != nil {
		return nil, err
	}
	if len(call.args) < 3 {
		return nil, errors.New("__print_flags() has no flag names")
	}
	delim, ok := stringLiteral(call.args[1])
	if !ok {
		return nil, errors.New("__print_flags() delimiter is not a string")
	}
	var entries []Entry
	for _, arg := range call.args[2:] {
		e, last, err := parseFlagEntry(arg, env)
		if err != nil {
			return nil, err
		}
		if last {
			break // the kernel stops at the { 0, NULL } terminator
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, errors.New("__print_flags() has no flag names")
	}
	return newTable(entries, delim, call.zero, source), nil
}

// printFlagsCall is one __print_flags(value, delim, {mask, name}...) call.
type printFlagsCall struct {
	args [][]token
	zero string // the string after ": " in "(flags) ? __print_flags(...) : "none""
}

// findGFPCall picks the __print_flags call whose value names gfp flags
// (REC->gfp_flags), or the first one.
func findGFPCall(toks []token) (printFlagsCall, error) {
	var first *printFlagsCall
	for i := 0; i+1 < len(toks); i++ {
		if !toks[i].is(tokIdent, "__print_flags") || !toks[i+1].is(tokPunct, "(") {
			continue
		}
		args, end, err := splitArgs(toks, i+1)
		if err != nil {
			return printFlagsCall{}, err
		}
		call := printFlagsCall{args: args}
		if end+2 < len(toks) && toks[end+1].is(tokPunct, ":") && toks[end+2].kind == tokString {
			call.zero = toks[end+2].text
		}
		if len(args) > 0 && mentionsGFP(args[0]) {
			return call, nil
		}
		if first == nil {
			first = &call
		}
		i = end
	}
	if first == nil {
		return printFlagsCall{}, errors.New("no __print_flags() call")
	}
	return *first, nil
}

func mentionsGFP(toks []token) bool {
	for _, t := range toks {
		if t.kind == tokIdent && strings.Contains(strings.ToLower(t.text), "gfp") {
			return true
		}
	}
	return false
}

// splitArgs splits the arguments of the call whose "(" is at open and
// returns them with the index of the closing ")".
func splitArgs(toks []token, open int) ([][]token, int, error) {
	var args [][]token
	depth, start := 0, open+1
	for i := open; i < len(toks); i++ {
		t := toks[i]
		if t.kind != tokPunct {
			continue
		}
		switch t.text {
		case "(", "{", "[":
			depth++
		case ")", "}", "]":
			depth--
			if depth == 0 {
				if i > start || len(args) > 0 {
					args = append(args, toks[start:i])
				}
				return args, i, nil
			}
			if depth < 0 {
				return nil, 0, fmt.Errorf("unbalanced %q", t.text)
			}
		case ",":
			if depth == 1 {
				args = append(args, toks[start:i])
				start = i + 1
			}
		}
	}
	return nil, 0, errors.New("unterminated __print_flags() call")
}

// parseFlagEntry parses "{ mask, "NAME" }". A name that is not a string
// (NULL, "((void *)0)") marks the end of the array.
func parseFlagEntry(arg []token, env map[string]uint64) (Entry, bool, error) {
	if len(arg) < 2 || !arg[0].is(tokPunct, "{") || !arg[len(arg)-1].is(tokPunct, "}") {
		return Entry{}, false, fmt.Errorf("flag entry %s is not {mask, name}", joinTokens(arg))
	}
	inner := arg[1 : len(arg)-1]
	depth, comma := 0, -1
	for i, t := range inner {
		if t.kind != tokPunct {
			continue
		}
		switch t.text {
		case "(", "{", "[":
			depth++
		case ")", "}", "]":
			depth--
		case ",":
			if depth == 0 && comma < 0 {
				comma = i
			}
		}
	}
	if comma < 0 {
		return Entry{}, false, fmt.Errorf("flag entry %s is not {mask, name}", joinTokens(arg))
	}
	name, ok := stringLiteral(inner[comma+1:])
	if !ok {
		return Entry{}, true, nil
	}
	v, err := evalExpr(inner[:comma], env)
	if err != nil {
		return Entry{}, false, fmt.Errorf("mask of %s: %w", name, err)
	}
	return Entry{Mask: v, Name: name}, false, nil
}

// stringLiteral returns the value of a string argument; adjacent literals
// concatenate as in C.
func stringLiteral(toks []token) (string, bool) {
	if len(toks) == 0 {
		return "", false
	}
	var b strings.Builder
	for _, t := range toks {
		if t.kind != tokString {
			return "", false
		}
		b.WriteString(t.text)
	}
	return b.String(), true
}

func joinTokens(toks []token) string {
	const max = 12
	var parts []string
	for i, t := range toks {
		if i == max {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, t.String())
	}
	return strings.Join(parts, " ")
}
