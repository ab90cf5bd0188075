package zmqsock

import (
	"errors"
	"fmt"
	"strings"
)

// z85Alphabet is the Z85 alphabet of ZeroMQ RFC 32, in value order.
const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// KeyLen is the length of a CURVE key in Z85 characters (32 bytes).
const KeyLen = 40

// z85Decode decodes a Z85 string whose length is a multiple of 5.
func z85Decode(s string) ([]byte, error) {
	if len(s)%5 != 0 {
		return nil, fmt.Errorf("Z85 text of %d characters (want a multiple of 5)", len(s))
	}
	out := make([]byte, 0, len(s)/5*4)
	for i := 0; i < len(s); i += 5 {
		var v uint64
		for _, c := range []byte(s[i : i+5]) {
			d := strings.IndexByte(z85Alphabet, c)
			if d < 0 {
				return nil, fmt.Errorf("%q is not a Z85 character", c)
			}
			v = v*85 + uint64(d)
		}
		if v > 0xFFFFFFFF {
			return nil, fmt.Errorf("Z85 group %q is out of range", s[i:i+5])
		}
		out = append(out, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return out, nil
}

// z85Encode encodes b, whose length must be a multiple of 4.
func z85Encode(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) / 4 * 5)
	for i := 0; i+4 <= len(b); i += 4 {
		v := uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		var g [5]byte
		for k := 4; k >= 0; k-- {
			g[k] = z85Alphabet[v%85]
			v /= 85
		}
		sb.Write(g[:])
	}
	return sb.String()
}

// ParseKey checks that s is a CURVE key: exactly 40 Z85 characters that
// decode to 32 bytes. It returns the 32 bytes.
func ParseKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty CURVE key")
	}
	if len(s) != KeyLen {
		return nil, fmt.Errorf("a CURVE key is %d Z85 characters (32 bytes), got %d characters", KeyLen, len(s))
	}
	b, err := z85Decode(s)
	if err != nil {
		return nil, fmt.Errorf("invalid CURVE key: %w", err)
	}
	return b, nil
}

// HCLQuote returns s as an HCL string literal. Z85 keys may contain "${"
// and "%{", which HCL would read as a template: they are doubled ("$${",
// "%%{") so the literal reads back as s.
func HCLQuote(s string) string {
	s = strings.ReplaceAll(s, "${", "$${")
	s = strings.ReplaceAll(s, "%{", "%%{")
	return `"` + s + `"`
}
