package format

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// AppendJSONString (and the eight-bytes-at-a-time scan under it) agrees
// with encoding/json on every byte class at every offset: the output is
// valid JSON, has no raw control byte, and decodes to the input (invalid
// UTF-8 as U+FFFD).
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	special := []string{"\"", "\\", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", " ", "é", "\u2028", "\u2029", "\xff", "\xe2\x82", "€", "<>&"}
	r := rand.New(rand.NewPCG(3, 4))
	var inputs []string
	for _, sp := range special {
		for pre := range 17 {
			for post := range 3 {
				inputs = append(inputs, strings.Repeat("a", pre)+sp+strings.Repeat("b", post*7))
			}
		}
	}
	for range 2000 {
		var b strings.Builder
		for n := r.IntN(40); n > 0; n-- {
			if r.IntN(4) == 0 {
				b.WriteString(special[r.IntN(len(special))])
			} else {
				b.WriteString(strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(12)))
			}
		}
		inputs = append(inputs, b.String())
	}
	for _, in := range inputs {
		for _, out := range [][]byte{AppendJSONString([]byte("x"), in)[1:], AppendJSONString(nil, []byte(in))} {
			var got string
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%q → %q: %v", in, out, err)
			}
			if want := strings.ToValidUTF8(in, "\uFFFD"); got != want {
				t.Fatalf("%q → %q decodes to %q; want %q", in, out, got, want)
			}
			for _, c := range out {
				if c < 0x20 {
					t.Fatalf("%q → %q has a raw control byte", in, out)
				}
			}
			if strings.ContainsAny(string(out), "\u2028\u2029") {
				t.Fatalf("%q → %q has a raw U+2028/U+2029", in, out)
			}
			if !utf8.Valid(out) {
				t.Fatalf("%q → %q is not UTF-8", in, out)
			}
		}
	}
}

func TestSkipSafe(t *testing.T) {
	for _, tc := range []struct {
		s    string
		from int
		want int
	}{
		{"", 0, 0}, {"abcdefghijklmnop", 0, 16}, {"abcdefghijklmno\"", 0, 15}, {"abcdefgh\\", 2, 8},
		{"abc\x01defghij", 0, 3}, {"abcdefghijk\xc3\xa9", 1, 11}, {"\"abcdefghij", 1, 11}, {"abcdefgh\x7f", 0, 9},
	} {
		if got := skipSafe([]byte(tc.s), tc.from); got != tc.want {
			t.Errorf("skipSafe(%q, %d) = %d; want %d", tc.s, tc.from, got, tc.want)
		}
	}
}
