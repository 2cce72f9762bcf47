// Package bingo serves the bingo checker, POST /v1/bingo/check: given a US
// 75-ball bingo card, the numbers called so far and the patterns to look for
// (line, four_corners, blackout), it checks that the card and numbers keep the
// rules of the game and answers which patterns the card has won. The README's
// "Bingo checker" section documents the request and response.
package bingo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"

	"github.com/keygate/keygate/internal/problem"
)

const (
	// maxErrors caps the errors listed in one problem, so that a huge
	// request cannot produce a huge response.
	maxErrors = 50
	// size is the width and height of a card.
	size = 5
	// free is the row and column of the free space.
	free = 2
	// maxNumber is the highest ball number.
	maxNumber = 75
)

// Problem codes of the bingo checker (besides the shared ones).
const (
	codeCard    = "invalid_card"
	codeCalled  = "invalid_called"
	codePattern = "invalid_pattern"
)

// request is the body of POST /v1/bingo/check. A field that is missing
// or null decodes as nil: a nil Card or Called is an error, a nil Patterns
// means the default ["line"].
type request struct {
	Card     cardRows      `json:"card"`
	Called   calledNumbers `json:"called"`
	Patterns patternList   `json:"patterns"`
}

// response is the 200 answer of POST /v1/bingo/check.
type response struct {
	// Bingo reports whether Wins is non-empty.
	Bingo bool `json:"bingo"`
	// Wins lists every win: patterns in the order requested; within "line",
	// rows 0-4, then columns 0-4, then diagonals 0 (top left to bottom
	// right) and 1 (top right to bottom left). Never null.
	Wins []win `json:"wins"`
	// Marked[row][column] reports whether that square's number was called;
	// the free space is always marked.
	Marked [size][size]bool `json:"marked"`
}

// win is one won pattern. Kind and Index are set only for "line" wins.
type win struct {
	Pattern string `json:"pattern"`
	// Kind is "row", "column" or "diagonal".
	Kind string `json:"kind,omitempty"`
	// Index is the row or column number (0-4), or the diagonal number (0 is
	// top left to bottom right, 1 is top right to bottom left). It is a
	// pointer so that index 0 is written and absence is omitted; it points
	// into indexes, so a win costs no allocation of its own.
	Index *int `json:"index,omitempty"`
}

// indexes backs win.Index. Never write to it.
var indexes = [size]int{0, 1, 2, 3, 4}

// pattern is a pattern a card can win.
type pattern uint8

const (
	patternLine        pattern = iota // any full row, column or diagonal
	patternFourCorners                // the four corner squares
	patternBlackout                   // every square
	numPatterns
)

// patternNames are the request and response names of the patterns.
var patternNames = [numPatterns]string{"line", "four_corners", "blackout"}

// column is one column's letter and number range.
type column struct {
	letter byte
	lo, hi int
}

// columns are the columns of a US 75-ball card, left to right.
var columns = [size]column{
	{'B', 1, 15}, {'I', 16, 30}, {'N', 31, 45}, {'G', 46, 60}, {'O', 61, 75},
}

// game is a validated request.
type game struct {
	card     [size][size]int      // card[free][free] is 0
	called   [maxNumber + 1]bool  // called[n] for each called n; called[0] is false
	patterns [numPatterns]pattern // distinct, in request order
	n        int                  // patterns in use
}

// Check serves POST /v1/bingo/check. It takes a US 75-ball bingo card, the
// numbers called so far and the patterns to look for, and answers which
// patterns the card has won. It checks neither the caller nor its scope: the
// caller mounts it behind whatever authentication it needs.
//
// Processing order (the first failing step answers):
//
//  1. method other than POST: 405 method_not_allowed, with Allow: POST
//  2. Content-Type not application/json (parameters such as charset are
//     ignored): 415 unsupported_media_type, with Accept-Post: application/json
//  3. body over [problem.MaxBodyBytes] bytes: 413 body_too_large
//  4. body not a single JSON object of the request shape (syntax error, wrong
//     type, unknown field, trailing data): 400 invalid_json
//  5. rule violations: 400 invalid_card, invalid_called or invalid_pattern.
//     Every category is checked and all violations are listed in the
//     problem's errors (card first, then called, then patterns, at most
//     maxErrors of them); the code names the category of the first one.
func Check(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		problem.Write(w, problem.New(http.StatusMethodNotAllowed, "method_not_allowed",
			"This endpoint accepts only POST."))
		return
	}
	body, p := problem.ReadJSON(w, r)
	if p != nil {
		problem.Write(w, p)
		return
	}
	var req request
	if p := problem.DecodeObject(body, &req, "bingo request"); p != nil {
		problem.Write(w, p)
		return
	}
	var g game
	if p := g.validate(&req); p != nil {
		problem.Write(w, p)
		return
	}
	problem.WriteJSON(w, http.StatusOK, g.check())
}

// typeError reports a JSON value of the wrong type in the request, such
// as a string where a card number should be.
type typeError struct {
	where string // the place, such as "card[1][3]"
	want  string // what belongs there, such as "an integer"
	got   []byte // the JSON value found there
}

// Error returns the message for the errors of an invalid_json problem, such
// as "card[1][3]: want an integer, got a string".
func (e *typeError) Error() string {
	got := "nothing"
	switch c, _ := firstByte(e.got); c {
	case '"':
		got = "a string"
	case '[':
		got = "an array"
	case '{':
		got = "an object"
	case 't', 'f':
		got = "a boolean"
	case 'n':
		got = "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		got = "the number " + problem.Shorten(string(e.got))
	}
	return e.where + ": want " + e.want + ", got " + got
}

// firstByte returns the first byte of b, if any.
func firstByte(b []byte) (byte, bool) {
	if len(b) == 0 {
		return 0, false
	}
	return b[0], true
}

// indexed returns name[i].
func indexed(name string, i int) string { return name + "[" + strconv.Itoa(i) + "]" }

// cardRows is the card as sent: any number of rows of any number of
// integers, so that validation can say what is wrong with its shape.
type cardRows [][]int

// UnmarshalJSON decodes the card without reflection and with two
// allocations, one for the rows and one for all their numbers. null leaves
// the card nil.
func (c *cardRows) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*c = nil
		return nil
	}
	if len(data) == 0 || data[0] != '[' {
		return &typeError{"card", "an array of 5 rows", data}
	}
	// Every number but the first is preceded by a comma, and every row but
	// the outer array by a bracket (if there are no strings, which are
	// errors): exact sizes for a valid card.
	nums := make([]int, 0, bytes.Count(data, []byte{','})+1)
	rows := make(cardRows, 0, max(bytes.Count(data, []byte{'['})-1, 0))
	outer := jsonArray{data: data, off: 1}
	for i := 0; ; i++ {
		row, ok := outer.next()
		if !ok {
			break
		}
		if row[0] != '[' {
			return &typeError{indexed("card", i), "an array of integers", row}
		}
		start := len(nums)
		inner := jsonArray{data: row, off: 1}
		for j := 0; ; j++ {
			v, ok := inner.next()
			if !ok {
				break
			}
			n, ok := parseInt(v)
			if !ok {
				return &typeError{indexed(indexed("card", i), j), "an integer", v}
			}
			nums = append(nums, n)
		}
		rows = append(rows, nums[start:len(nums):len(nums)])
	}
	*c = rows
	return nil
}

// calledNumbers is the called numbers as sent.
type calledNumbers []int

// UnmarshalJSON decodes the numbers without reflection and with one
// allocation. null leaves them nil.
func (c *calledNumbers) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*c = nil
		return nil
	}
	if len(data) == 0 || data[0] != '[' {
		return &typeError{"called", "an array of integers", data}
	}
	nums := make(calledNumbers, 0, bytes.Count(data, []byte{','})+1)
	elems := jsonArray{data: data, off: 1}
	for i := 0; ; i++ {
		v, ok := elems.next()
		if !ok {
			break
		}
		n, ok := parseInt(v)
		if !ok {
			return &typeError{indexed("called", i), "an integer", v}
		}
		nums = append(nums, n)
	}
	*c = nums
	return nil
}

// patternList is the pattern names as sent.
type patternList []string

// UnmarshalJSON decodes the names with one allocation when they are known
// names. null leaves them nil.
func (p *patternList) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*p = nil
		return nil
	}
	if len(data) == 0 || data[0] != '[' {
		return &typeError{"patterns", "an array of strings", data}
	}
	names := make(patternList, 0, bytes.Count(data, []byte{','})+1)
	elems := jsonArray{data: data, off: 1}
	for i := 0; ; i++ {
		v, ok := elems.next()
		if !ok {
			break
		}
		if len(v) < 2 || v[0] != '"' {
			return &typeError{indexed("patterns", i), "a string", v}
		}
		names = append(names, decodePatternName(v))
	}
	*p = names
	return nil
}

// decodePatternName decodes the JSON string v, without allocating if it is
// the name of a pattern written without escapes.
func decodePatternName(v []byte) string {
	raw := v[1 : len(v)-1]
	if bytes.IndexByte(raw, '\\') >= 0 {
		var s string
		if json.Unmarshal(v, &s) != nil { // cannot happen: v is a well-formed string
			return string(raw)
		}
		return s
	}
	for _, name := range patternNames {
		if string(raw) == name {
			return name
		}
	}
	return string(raw)
}

// jsonArray iterates over the elements of a JSON array. The array must be
// well-formed, as encoding/json checks before it calls an UnmarshalJSON
// method, so jsonArray checks no syntax; it only stays within data.
type jsonArray struct {
	data []byte // the array, brackets included
	off  int    // where to look for the next element
}

// next returns the next element, or false after the last one.
func (e *jsonArray) next() ([]byte, bool) {
	e.skipSpace()
	if e.off < len(e.data) && e.data[e.off] == ',' {
		e.off++
		e.skipSpace()
	}
	if e.off >= len(e.data) || e.data[e.off] == ']' {
		return nil, false
	}
	start := e.off
	e.off = skipValue(e.data, e.off)
	return e.data[start:e.off], true
}

// skipSpace moves past any JSON whitespace.
func (e *jsonArray) skipSpace() {
	for e.off < len(e.data) && isSpace(e.data[e.off]) {
		e.off++
	}
}

// isSpace reports whether c is JSON whitespace.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// skipValue returns the offset just past the well-formed JSON value that
// starts at data[i].
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '[', '{':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '[', '{':
				depth++
			case ']', '}':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	// A number, true, false or null.
	for i < len(data) && !isSpace(data[i]) && data[i] != ',' && data[i] != ']' && data[i] != '}' {
		i++
	}
	return i
}

// skipString returns the offset just past the string that starts at data[i].
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(data)
}

// parseInt parses a JSON number that is an integer in the range of int.
// It reports false for anything else: other values, fractions, exponents and
// integers out of range.
func parseInt(b []byte) (int, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	const limit = uint64(math.MaxInt) + 1 // the magnitude of math.MinInt
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (limit-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	if neg {
		return int(-u), true // also right for math.MinInt, where -u == u
	}
	if u == limit {
		return 0, false
	}
	return int(u), true
}

// ruleErrors collects rule violations.
type ruleErrors struct {
	code  string   // the category of the first violation
	list  []string // the first maxErrors violations
	total int      // all violations, listed or not
}

// addf records a violation of category code.
func (e *ruleErrors) addf(code, format string, args ...any) {
	if e.total == 0 {
		e.code = code
	}
	e.total++
	if len(e.list) < maxErrors {
		e.list = append(e.list, fmt.Sprintf(format, args...))
	}
}

// problem returns the 400 problem for the violations, or nil if there are none.
func (e *ruleErrors) problem() *problem.Problem {
	if e.total == 0 {
		return nil
	}
	var detail string
	switch {
	case e.total == 1:
		detail = "The bingo request breaks 1 rule; see errors."
	case e.total == len(e.list):
		detail = fmt.Sprintf("The bingo request breaks %d rules; see errors.", e.total)
	default:
		detail = fmt.Sprintf("The bingo request breaks %d rules; errors lists the first %d.", e.total, len(e.list))
	}
	p := problem.New(http.StatusBadRequest, e.code, detail)
	p.Errors = e.list
	return p
}

// validate checks req against the rules and, if it keeps them, stores it in
// g. Otherwise it returns the problem listing every violation.
func (g *game) validate(req *request) *problem.Problem {
	var errs ruleErrors
	g.validateCard(req.Card, &errs)
	g.validateCalled(req.Called, &errs)
	g.validatePatterns(req.Patterns, &errs)
	return errs.problem()
}

// validateCard checks and stores the card. A row of the wrong length is
// reported as a whole and its numbers are not checked, since it cannot be told
// which column each belongs to. The free space is not checked for duplicates,
// nor are numbers outside 1-75.
func (g *game) validateCard(rows [][]int, errs *ruleErrors) {
	if rows == nil {
		errs.addf(codeCard, "card is required")
		return
	}
	if len(rows) != size {
		errs.addf(codeCard, "card: want %d rows, got %d", size, len(rows))
	}
	var firstAt [maxNumber + 1]int // 1 + the flat position where each number first appears
	for i, row := range rows {
		if len(row) != size {
			errs.addf(codeCard, "card[%d]: want %d numbers, got %d", i, size, len(row))
			continue
		}
		for j, v := range row {
			if i < size {
				g.card[i][j] = v
			}
			if i == free && j == free {
				if v != 0 {
					errs.addf(codeCard, "card[%d][%d]: the free space must be 0", i, j)
				}
				continue
			}
			col := &columns[j]
			if v == 0 {
				errs.addf(codeCard, "card[%d][%d]: 0 is allowed only in the free space card[%d][%d]",
					i, j, free, free)
			} else if v < col.lo || v > col.hi {
				errs.addf(codeCard, "card[%d][%d]: %d is not in column %c (%d-%d)",
					i, j, v, col.letter, col.lo, col.hi)
			}
			if v < 1 || v > maxNumber {
				continue
			}
			if at := firstAt[v]; at != 0 {
				errs.addf(codeCard, "card[%d][%d]: %d appears twice (also at card[%d][%d])",
					i, j, v, (at-1)/size, (at-1)%size)
			} else {
				firstAt[v] = 1 + i*size + j
			}
		}
	}
}

// validateCalled checks and stores the called numbers.
func (g *game) validateCalled(called []int, errs *ruleErrors) {
	if called == nil {
		errs.addf(codeCalled, "called is required")
		return
	}
	var firstAt [maxNumber + 1]int // 1 + the index where each number was first called
	for i, v := range called {
		if v < 1 || v > maxNumber {
			errs.addf(codeCalled, "called[%d]: %d is not between 1 and %d", i, v, maxNumber)
			continue
		}
		if at := firstAt[v]; at != 0 {
			errs.addf(codeCalled, "called[%d]: %d was already called at called[%d]", i, v, at-1)
			continue
		}
		firstAt[v] = i + 1
		g.called[v] = true
	}
}

// validatePatterns checks and stores the patterns; nil means ["line"].
func (g *game) validatePatterns(patterns []string, errs *ruleErrors) {
	if patterns == nil {
		g.patterns[0], g.n = patternLine, 1
		return
	}
	if len(patterns) == 0 {
		errs.addf(codePattern, "patterns: must not be empty (leave it out for the default, line)")
		return
	}
	var firstAt [numPatterns]int // 1 + the index where each pattern first appears
	for i, name := range patterns {
		p := pattern(0)
		for p < numPatterns && patternNames[p] != name {
			p++
		}
		switch {
		case p == numPatterns:
			errs.addf(codePattern, "patterns[%d]: unknown pattern %s (want line, four_corners or blackout)",
				i, problem.QuoteShort(name))
		case firstAt[p] != 0:
			errs.addf(codePattern, "patterns[%d]: %q appears twice (also at patterns[%d])",
				i, name, firstAt[p]-1)
		default: // at most numPatterns get here, since they are distinct
			firstAt[p] = i + 1
			g.patterns[g.n] = p
			g.n++
		}
	}
}

// maxWins is the most wins a card can have: every line, four corners
// and blackout.
const maxWins = 2*size + 2 + numPatterns - 1

// check marks the card and finds the wins of a validated game.
func (g *game) check() *response {
	var m [size][size]bool
	for i := range size {
		for j := range size {
			m[i][j] = g.called[g.card[i][j]]
		}
	}
	m[free][free] = true

	var buf [maxWins]win // on the stack: cloned to the heap once
	wins := buf[:0]
	for _, p := range g.patterns[:g.n] {
		name := patternNames[p]
		switch p {
		case patternLine:
			for i := range size {
				if m[i][0] && m[i][1] && m[i][2] && m[i][3] && m[i][4] {
					wins = append(wins, win{name, "row", &indexes[i]})
				}
			}
			for j := range size {
				if m[0][j] && m[1][j] && m[2][j] && m[3][j] && m[4][j] {
					wins = append(wins, win{name, "column", &indexes[j]})
				}
			}
			if m[0][0] && m[1][1] && m[2][2] && m[3][3] && m[4][4] {
				wins = append(wins, win{name, "diagonal", &indexes[0]})
			}
			if m[0][4] && m[1][3] && m[2][2] && m[3][1] && m[4][0] {
				wins = append(wins, win{name, "diagonal", &indexes[1]})
			}
		case patternFourCorners:
			if m[0][0] && m[0][4] && m[4][0] && m[4][4] {
				wins = append(wins, win{Pattern: name})
			}
		case patternBlackout:
			all := true
			for i := range size {
				for j := range size {
					all = all && m[i][j]
				}
			}
			if all {
				wins = append(wins, win{Pattern: name})
			}
		}
	}
	// Clone keeps wins non-nil, so that no wins is [] rather than null.
	return &response{Bingo: len(wins) > 0, Wins: slices.Clone(wins), Marked: m}
}
