// Package ouiname shortens IEEE registry organisation names to what an
// inventory shows: the name without its legal form.
package ouiname

import "strings"

// legal are trailing legal forms dropped from organisation names, compared
// case-insensitively after punctuation is stripped from the end.
var legal = []string{
	"co ltd", "co limited", "company limited", "co", "ltd", "limited", "inc", "incorporated",
	"corp", "corporation", "llc", "l l c", "gmbh", "gmbh co kg", "gmbh & co kg", "co kg", "kg", "ag", "sa", "s a", "sas", "s a s",
	"sarl", "s r l", "srl", "spa", "s p a", "bv", "b v", "nv", "n v", "ab", "as", "a s", "oy", "aps", "plc", "pty", "pty ltd",
	"pte ltd", "pte", "sdn bhd", "bhd", "kk", "k k", "se", "s l", "sl", "ltda", "oü", "sro", "s r o", "zrt", "doo", "d o o",
	"jsc", "ojsc", "llp", "lp", "ltd sti", "tic ltd sti", "a/s",
}

// Short returns name without trailing legal forms and punctuation,
// whitespace collapsed. "Private" and the registration authority's own
// entries give "".
func Short(name string) string {
	name = strings.Join(strings.Fields(name), " ")
	switch strings.ToLower(name) {
	case "", "private", "ieee registration authority":
		return ""
	}
	for {
		trimmed := strings.TrimRight(name, " .,;")
		lower := strings.ToLower(trimmed)
		cut := false
		for _, l := range legal {
			if strings.HasSuffix(normal(lower), " "+l) {
				// Find the cut point in trimmed: drop words of l from the end.
				n := len(strings.Fields(l))
				words := strings.Fields(strings.NewReplacer(",", " ", ".", " ").Replace(trimmed))
				if len(words) <= n {
					break
				}
				keep := words[:len(words)-n]
				// Keep the original spelling up to the start of the cut.
				idx := cutIndex(trimmed, keep)
				if idx > 0 {
					trimmed = strings.TrimRight(trimmed[:idx], " .,;&-")
					cut = true
				}
				break
			}
		}
		if !cut || trimmed == "" {
			name = trimmed
			break
		}
		name = trimmed
	}
	name = titleShouting(name)
	if len(name) > 40 {
		name = strings.TrimSpace(name[:40])
	}
	return name
}

// normal lowers s and turns punctuation into single spaces.
func normal(s string) string {
	s = strings.NewReplacer(",", " ", ".", " ").Replace(strings.ToLower(s))
	return strings.Join(strings.Fields(s), " ")
}

// cutIndex returns the byte offset in s just after the words keep (as
// split from s with "," and "." taken as spaces).
func cutIndex(s string, keep []string) int {
	i := 0
	for _, w := range keep {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return -1
		}
		i += j + len(w)
	}
	return i
}

// titleShouting writes a name registered in capitals ("MOXA TECHNOLOGIES
// INC.") in title case, word by word, leaving words of up to four letters
// as they are: those are mostly acronyms (IBM, ABB, MOXA).
func titleShouting(name string) string {
	if strings.ToUpper(name) != name || strings.ToLower(name) == name {
		return name
	}
	words := strings.Split(name, " ")
	for i, w := range words {
		parts := strings.Split(w, "-")
		for j, p := range parts {
			if len([]rune(p)) <= 4 {
				continue
			}
			r := []rune(strings.ToLower(p))
			r[0] = []rune(strings.ToUpper(string(r[0])))[0]
			parts[j] = string(r)
		}
		words[i] = strings.Join(parts, "-")
	}
	return strings.Join(words, " ")
}
