// Package typo finds what a misspelt name was meant to be: a scope that
// apikey create is given, a variable set in the environment. A name the
// program does not know is otherwise ignored without a word.
package typo

// Distance is the optimal string alignment distance of a and b: how many
// insertions, deletions, substitutions and swaps of neighbours, byte by
// byte, make one the other. It is for short names: its cost is len(a) ×
// len(b).
func Distance(a, b string) int {
	// Three rows of the table: two back (for swaps), one back, this one.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// Meant returns the name of known that s is likely a misspelling of: the
// nearest, one edit away, or two for names of 6 bytes or more, where two
// edits still leave most of the name; ok is false when s is known, or no
// name is that near. Of names equally near, the first in known wins.
func Meant(s string, known []string) (meant string, ok bool) {
	best := 3
	for _, k := range known {
		if k == s {
			return "", false
		}
		limit := 1
		if len(k) >= 6 {
			limit = 2
		}
		if len(s) > len(k)+limit || len(k) > len(s)+limit {
			continue // too far apart in length: no need for the table
		}
		if d := Distance(s, k); d <= limit && d < best {
			meant, best = k, d
		}
	}
	return meant, meant != ""
}
