package referral

import (
	"crypto/rand"
	"strings"
)

// CodeLength is the number of characters in a referral code: 10 Crockford
// base32 characters carry 50 random bits.
const CodeLength = 10

// crockford is Crockford's base32 alphabet: no I, L, O or U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewCode returns a fresh random referral code from crypto/rand.
func NewCode() string {
	var b [CodeLength]byte
	rand.Read(b[:]) // never fails on supported platforms (Go 1.24+ crashes instead)
	for i := range b {
		b[i] = crockford[b[i]&31]
	}
	return string(b[:])
}

// NormalizeCode returns the canonical form of a referral code as a person
// might type it: case-insensitive, hyphens and spaces ignored, I and L read
// as 1, O as 0 (Crockford's decoding rules). ok is false if s cannot be a
// code.
func NormalizeCode(s string) (code string, ok bool) {
	if len(s) > 2*CodeLength {
		return "", false
	}
	var b [CodeLength]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		switch c {
		case 'I', 'L':
			c = '1'
		case 'O':
			c = '0'
		}
		if n == CodeLength || strings.IndexByte(crockford, c) < 0 {
			return "", false
		}
		b[n] = c
		n++
	}
	if n != CodeLength {
		return "", false
	}
	return string(b[:]), true
}
