package manifest

import "strings"

// suggest returns the known name key was most likely meant to be, or "".
// Case, '_' and '-' are ignored ("min_instances" is minInstances); beyond
// that, an edit distance of 1 (2 for longer names) counts as close, a
// swap of two neighbours being one edit ("memroy").
func suggest(key string, known []string) string {
	if len(key) > 64 {
		return ""
	}
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	k := norm(key)
	best, bestDist := "", 3
	for _, c := range known {
		nc := norm(c)
		if nc == k {
			return c
		}
		limit := 1
		if len(nc) > 4 {
			limit = 2
		}
		if d := distance(k, nc); d <= limit && d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of adjacent bytes.
func distance(a, b string) int {
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
