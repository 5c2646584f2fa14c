package gfp

import (
	"fmt"
	"strings"
)

// tokKind classifies a C token as far as a tracepoint "print fmt" needs it.
type tokKind int

const (
	tokIdent tokKind = iota
	tokNumber
	tokString
	tokChar
	tokPunct
)

type token struct {
	kind tokKind
	text string // raw text; for tokString the decoded contents
}

func (t token) is(kind tokKind, text string) bool { return t.kind == kind && t.text == text }

func (t token) String() string {
	if t.kind == tokString {
		return fmt.Sprintf("%q", t.text)
	}
	return t.text
}

// multiPunct lists the C punctuators longer than one byte that can appear in
// a print fmt. Anything else is a one-byte punctuator, so the tokenizer never
// rejects input it does not understand: the parser decides what matters.
var multiPunct = []string{"<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "->", "++", "--"}

// tokenize splits C source text into tokens. Only an unterminated string or
// character literal is an error.
func tokenize(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			toks = append(toks, token{tokIdent, src[i:j]})
			i = j
		case c >= '0' && c <= '9':
			// A C preprocessing number: digits, letters, '_' and '.', which
			// swallows suffixes like "UL" so that parseNumber sees them.
			j := i + 1
			for j < len(src) && (isIdentPart(src[j]) || src[j] == '.') {
				j++
			}
			toks = append(toks, token{tokNumber, src[i:j]})
			i = j
		case c == '"' || c == '\'':
			s, n, err := readQuoted(src[i:])
			if err != nil {
				return nil, fmt.Errorf("at offset %d: %w", i, err)
			}
			kind := tokString
			if c == '\'' {
				kind = tokChar
			}
			toks = append(toks, token{kind, s})
			i += n
		default:
			p := string(c)
			for _, m := range multiPunct {
				if strings.HasPrefix(src[i:], m) {
					p = m
					break
				}
			}
			toks = append(toks, token{tokPunct, p})
			i += len(p)
		}
	}
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// readQuoted decodes a string or character literal starting at s[0] and
// returns its contents and the number of bytes consumed.
func readQuoted(s string) (string, int, error) {
	quote := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case quote:
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) {
				return "", 0, fmt.Errorf("unterminated literal")
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			default:
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated literal")
}
