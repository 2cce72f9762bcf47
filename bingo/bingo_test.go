package bingo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/testkit"
)

// testCard is a valid card: columns B, I, N, G, O hold 1-15, 16-30,
// 31-45, 46-60 and 61-75, and the free space is 0.
var testCard = [5][5]int{
	{7, 19, 38, 52, 71},
	{3, 24, 41, 49, 66},
	{12, 17, 0, 57, 62},
	{1, 28, 33, 60, 74},
	{14, 22, 44, 47, 69},
}

// cardJSON renders a card as JSON.
func cardJSON(card [5][5]int) string {
	b, err := json.Marshal(card)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// intsJSON renders numbers as a JSON array.
func intsJSON(nums []int) string {
	b, err := json.Marshal(nums)
	if err != nil {
		panic(err)
	}
	if nums == nil {
		return "[]"
	}
	return string(b)
}

// requestBody is a request body for testCard with the given called numbers
// and, unless patterns is empty, the given patterns.
func requestBody(called []int, patterns ...string) string {
	return requestBodyFor(testCard, called, patterns...)
}

// requestBodyFor is requestBody for any card.
func requestBodyFor(card [5][5]int, called []int, patterns ...string) string {
	s := `{"card":` + cardJSON(card) + `,"called":` + intsJSON(called)
	if len(patterns) > 0 {
		b, _ := json.Marshal(patterns)
		s += `,"patterns":` + string(b)
	}
	return s + "}"
}

// cardWith returns testCard with card[i][j] set to v.
func cardWith(i, j, v int) [5][5]int {
	c := testCard
	c[i][j] = v
	return c
}

// cells returns the numbers of testCard at the given positions,
// skipping the free space.
func cells(pos ...[2]int) []int {
	var nums []int
	for _, p := range pos {
		if v := testCard[p[0]][p[1]]; v != 0 {
			nums = append(nums, v)
		}
	}
	return nums
}

func rowOf(i int) []int {
	var p [][2]int
	for j := range 5 {
		p = append(p, [2]int{i, j})
	}
	return cells(p...)
}

func columnOf(j int) []int {
	var p [][2]int
	for i := range 5 {
		p = append(p, [2]int{i, j})
	}
	return cells(p...)
}

func diagonalOf(k int) []int {
	var p [][2]int
	for i := range 5 {
		if k == 0 {
			p = append(p, [2]int{i, i})
		} else {
			p = append(p, [2]int{i, 4 - i})
		}
	}
	return cells(p...)
}

// distinct concatenates lists of numbers, keeping only the first of each.
func distinct(lists ...[]int) []int {
	var out []int
	for _, l := range lists {
		for _, n := range l {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// allNumbers are the 24 numbers of testCard.
func allNumbers() []int {
	var nums []int
	for i := range 5 {
		nums = append(nums, rowOf(i)...)
	}
	return nums
}

// doCheck calls Check directly.
func doCheck(t testing.TB, method, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "/v1/bingo/check", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	Check(rec, req)
	return rec
}

// testResponse mirrors the 200 response, decoded independently of the
// handler's types.
type testResponse struct {
	Bingo bool `json:"bingo"`
	Wins  []struct {
		Pattern string `json:"pattern"`
		Kind    string `json:"kind"`
		Index   *int   `json:"index"`
	} `json:"wins"`
	Marked [5][5]bool `json:"marked"`
}

// winStrings renders wins as "pattern" or "pattern:kind:index".
func (r *testResponse) winStrings() []string {
	out := []string{}
	for _, w := range r.Wins {
		s := w.Pattern
		if w.Kind != "" || w.Index != nil {
			s += ":" + w.Kind
			if w.Index != nil {
				s += ":" + strconv.Itoa(*w.Index)
			}
		}
		out = append(out, s)
	}
	return out
}

// decodeOK checks a 200 response and decodes it.
func decodeOK(t *testing.T, rec *httptest.ResponseRecorder) *testResponse {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	if w := string(raw["wins"]); w == "" || w == "null" {
		t.Fatalf("wins = %q, want an array; body %s", w, rec.Body)
	}
	var resp testResponse
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	return &resp
}

func TestCheckWins(t *testing.T) {
	type tc struct {
		name     string
		called   []int
		patterns []string // nil: field left out
		want     []string
	}
	var tests []tc
	for i := range 5 {
		tests = append(tests, tc{fmt.Sprintf("row %d", i), rowOf(i), nil, []string{fmt.Sprintf("line:row:%d", i)}})
	}
	for j := range 5 {
		tests = append(tests, tc{fmt.Sprintf("column %d", j), columnOf(j), nil, []string{fmt.Sprintf("line:column:%d", j)}})
	}
	for k := range 2 {
		tests = append(tests, tc{fmt.Sprintf("diagonal %d", k), diagonalOf(k), []string{"line"}, []string{fmt.Sprintf("line:diagonal:%d", k)}})
	}
	all := allNumbers()
	corners := []int{7, 71, 14, 69}
	tests = append(tests,
		tc{"four corners", corners, []string{"four_corners"}, []string{"four_corners"}},
		tc{"four corners not asked for", corners, nil, nil},
		tc{"three corners", corners[:3], []string{"four_corners", "line", "blackout"}, nil},
		tc{"blackout", all, []string{"blackout"}, []string{"blackout"}},
		tc{"blackout missing one", all[1:], []string{"blackout"}, nil},
		tc{"no called numbers", []int{}, nil, nil},
		tc{"no win", []int{7, 19, 38, 52, 3, 24, 41, 49, 12, 17, 57, 1, 75, 2}, nil, nil},
		tc{"numbers not on the card", []int{2, 4, 5, 6, 8}, nil, nil},
		tc{"row 2 needs the free space", []int{12, 17, 57, 62}, nil, []string{"line:row:2"}},
		tc{"multiple lines in order",
			// called out of order: diagonal 1, column 3, row 1
			distinct(diagonalOf(1), columnOf(3), rowOf(1)), nil,
			[]string{"line:row:1", "line:column:3", "line:diagonal:1"}},
		tc{"patterns in requested order", append(rowOf(0), 14, 69), []string{"four_corners", "line"},
			[]string{"four_corners", "line:row:0"}},
		tc{"patterns in requested order reversed", append(rowOf(0), 14, 69), []string{"line", "four_corners"},
			[]string{"line:row:0", "four_corners"}},
		tc{"everything", all, []string{"blackout", "four_corners", "line"}, []string{
			"blackout", "four_corners",
			"line:row:0", "line:row:1", "line:row:2", "line:row:3", "line:row:4",
			"line:column:0", "line:column:1", "line:column:2", "line:column:3", "line:column:4",
			"line:diagonal:0", "line:diagonal:1",
		}},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := decodeOK(t, doCheck(t, http.MethodPost, "application/json", requestBody(tt.called, tt.patterns...)))
			want := tt.want
			if want == nil {
				want = []string{}
			}
			if got := resp.winStrings(); !slices.Equal(got, want) {
				t.Errorf("wins = %q, want %q", got, want)
			}
			if resp.Bingo != (len(want) > 0) {
				t.Errorf("bingo = %v with wins %q", resp.Bingo, want)
			}
			var marked [5][5]bool
			for i := range 5 {
				for j := range 5 {
					marked[i][j] = (i == 2 && j == 2) || slices.Contains(tt.called, testCard[i][j])
				}
			}
			if resp.Marked != marked {
				t.Errorf("marked = %v, want %v", resp.Marked, marked)
			}
		})
	}
}

// TestCheckExactResponse pins the exact bytes of two responses; the
// first is the README example.
func TestCheckExactResponse(t *testing.T) {
	tests := []struct {
		body, want string
	}{
		{
			`{"card":[[7,19,38,52,71],[3,24,41,49,66],[12,17,0,57,62],[1,28,33,60,74],[14,22,44,47,69]],"called":[12,57,17,62,38,41,33,44,5]}`,
			`{"bingo":true,"wins":[{"pattern":"line","kind":"row","index":2},{"pattern":"line","kind":"column","index":2}],"marked":[[false,false,true,false,false],[false,false,true,false,false],[true,true,true,true,true],[false,false,true,false,false],[false,false,true,false,false]]}` + "\n",
		},
		{
			requestBody([]int{7, 71, 14, 69}, "four_corners", "blackout", "line"),
			`{"bingo":true,"wins":[{"pattern":"four_corners"}],"marked":[[true,false,false,false,true],[false,false,false,false,false],[false,false,true,false,false],[false,false,false,false,false],[true,false,false,false,true]]}` + "\n",
		},
		{
			requestBody([]int{}),
			`{"bingo":false,"wins":[],"marked":[[false,false,false,false,false],[false,false,false,false,false],[false,false,true,false,false],[false,false,false,false,false],[false,false,false,false,false]]}` + "\n",
		},
	}
	for _, tt := range tests {
		rec := doCheck(t, http.MethodPost, "application/json", tt.body)
		if rec.Code != http.StatusOK || rec.Body.String() != tt.want {
			t.Errorf("POST %s\n got %d %s\nwant 200 %s", tt.body, rec.Code, rec.Body, tt.want)
		}
		if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(len(tt.want)) {
			t.Errorf("Content-Length = %q, want %d", cl, len(tt.want))
		}
	}
}

func TestCheckInvalid(t *testing.T) {
	card := cardJSON(testCard)
	rows4 := cardJSON(testCard)
	rows4 = rows4[:strings.LastIndex(rows4, ",[")] + "]" // drop the last row
	rows6 := strings.TrimSuffix(card, "]") + ",[2,16,31,46,61]]"
	long6 := strings.Replace(card, "[12,17,0,57,62]", "[12,17,0,57,62,63]", 1)
	short4 := strings.Replace(card, "[12,17,0,57,62]", "[12,17,0,57]", 1)
	nullRow := strings.Replace(card, "[12,17,0,57,62]", "null", 1)
	many := make([]int, 200)
	for i := range many {
		many[i] = 100 + i
	}
	var manyErrors []string
	for i := range 50 {
		manyErrors = append(manyErrors, fmt.Sprintf("called[%d]: %d is not between 1 and 75", i, 100+i))
	}
	longName := strings.Repeat("é", 30) // 60 bytes: cut at 40 bytes, on a rune boundary

	tests := []struct {
		name   string
		body   string
		code   string
		errors []string
		detail string // if set, the exact detail
	}{
		// card
		{"card missing", `{"called":[]}`, "invalid_card", []string{"card is required"}, "The bingo request breaks 1 rule; see errors."},
		{"card null", `{"card":null,"called":[]}`, "invalid_json", []string{"card: null is not allowed; omit the member for its default"}, ""},
		{"card empty", `{"card":[],"called":[]}`, "invalid_card", []string{"card: want 5 rows, got 0"}, ""},
		{"4 rows", `{"card":` + rows4 + `,"called":[]}`, "invalid_card", []string{"card: want 5 rows, got 4"}, ""},
		{"6 rows", `{"card":` + rows6 + `,"called":[]}`, "invalid_card", []string{"card: want 5 rows, got 6"}, ""},
		{"row of 6", `{"card":` + long6 + `,"called":[]}`, "invalid_card", []string{"card[2]: want 5 numbers, got 6"}, ""},
		{"row of 4", `{"card":` + short4 + `,"called":[]}`, "invalid_card", []string{"card[2]: want 5 numbers, got 4"}, ""},
		{"B out of range", requestBodyFor(cardWith(0, 0, 16), nil), "invalid_card",
			[]string{"card[0][0]: 16 is not in column B (1-15)"}, ""},
		{"I out of range", requestBodyFor(cardWith(4, 1, 15), nil), "invalid_card",
			[]string{"card[4][1]: 15 is not in column I (16-30)"}, ""},
		{"N out of range", requestBodyFor(cardWith(0, 2, 46), nil), "invalid_card",
			[]string{"card[0][2]: 46 is not in column N (31-45)"}, ""},
		{"G out of range", requestBodyFor(cardWith(1, 3, 16), nil), "invalid_card",
			[]string{"card[1][3]: 16 is not in column G (46-60)"}, ""},
		{"O out of range", requestBodyFor(cardWith(3, 4, 76), nil), "invalid_card",
			[]string{"card[3][4]: 76 is not in column O (61-75)"}, ""},
		{"negative", requestBodyFor(cardWith(3, 0, -1), nil), "invalid_card",
			[]string{"card[3][0]: -1 is not in column B (1-15)"}, ""},
		{"free space not 0", requestBodyFor(cardWith(2, 2, 40), nil), "invalid_card",
			[]string{"card[2][2]: the free space must be 0"}, ""},
		{"0 outside the free space", requestBodyFor(cardWith(0, 0, 0), nil), "invalid_card",
			[]string{"card[0][0]: 0 is allowed only in the free space card[2][2]"}, ""},
		{"duplicate", requestBodyFor(func() [5][5]int { c := cardWith(0, 1, 20); c[3][1] = 20; return c }(), nil), "invalid_card",
			[]string{"card[3][1]: 20 appears twice (also at card[0][1])"}, ""},
		{"three times", requestBodyFor(func() [5][5]int { c := cardWith(0, 1, 20); c[3][1] = 20; c[4][1] = 20; return c }(), nil), "invalid_card",
			[]string{"card[3][1]: 20 appears twice (also at card[0][1])", "card[4][1]: 20 appears twice (also at card[0][1])"}, ""},
		{"wrong column and duplicate", requestBodyFor(cardWith(1, 3, 17), nil), "invalid_card",
			[]string{"card[1][3]: 17 is not in column G (46-60)", "card[2][1]: 17 appears twice (also at card[1][3])"}, ""},
		{"many card errors", `{"card":[[7,19,38,52,71],[3,24,41],[0,17,5,57,62,1],[80,28,0,60,7]],"called":[]}`, "invalid_card", []string{
			"card: want 5 rows, got 4",
			"card[1]: want 5 numbers, got 3",
			"card[2]: want 5 numbers, got 6",
			"card[3][0]: 80 is not in column B (1-15)",
			"card[3][2]: 0 is allowed only in the free space card[2][2]",
			"card[3][4]: 7 is not in column O (61-75)",
			"card[3][4]: 7 appears twice (also at card[0][0])",
		}, "The bingo request breaks 7 rules; see errors."},

		// called
		{"called missing", `{"card":` + card + `}`, "invalid_called", []string{"called is required"}, ""},
		{"called null", `{"card":` + card + `,"called":null}`, "invalid_json", []string{"called: null is not allowed; omit the member for its default"}, ""},
		{"called out of range", requestBody([]int{1, 2, 3, 4, 80}), "invalid_called",
			[]string{"called[4]: 80 is not between 1 and 75"}, ""},
		{"called 0 and negative", requestBody([]int{0, -5, 76}), "invalid_called", []string{
			"called[0]: 0 is not between 1 and 75",
			"called[1]: -5 is not between 1 and 75",
			"called[2]: 76 is not between 1 and 75",
		}, ""},
		{"called extremes", `{"card":` + card + `,"called":[-9223372036854775808, 9223372036854775807, -0]}`, "invalid_called", []string{
			"called[0]: -9223372036854775808 is not between 1 and 75",
			"called[1]: 9223372036854775807 is not between 1 and 75",
			"called[2]: 0 is not between 1 and 75",
		}, ""},
		{"called twice", requestBody([]int{1, 2, 12, 3, 4, 12, 12}), "invalid_called", []string{
			"called[5]: 12 was already called at called[2]",
			"called[6]: 12 was already called at called[2]",
		}, ""},
		{"errors capped", requestBody(many), "invalid_called", manyErrors,
			"The bingo request breaks 200 rules; errors lists the first 50."},

		// patterns
		{"unknown pattern", requestBody(nil, "x"), "invalid_pattern",
			[]string{`patterns[0]: unknown pattern "x" (want line, four_corners or blackout)`}, ""},
		{"pattern names are case-sensitive", requestBody(nil, "line", "LINE"), "invalid_pattern",
			[]string{`patterns[1]: unknown pattern "LINE" (want line, four_corners or blackout)`}, ""},
		{"long unknown pattern is shortened", requestBody(nil, longName), "invalid_pattern",
			[]string{`patterns[0]: unknown pattern "` + strings.Repeat("é", 20) + `"... (want line, four_corners or blackout)`}, ""},
		{"empty patterns", `{"card":` + card + `,"called":[],"patterns":[]}`, "invalid_pattern",
			[]string{"patterns: must not be empty (leave it out for the default, line)"}, ""},
		{"duplicate pattern", requestBody(nil, "line", "blackout", "line", "blackout"), "invalid_pattern", []string{
			`patterns[2]: "line" appears twice (also at patterns[0])`,
			`patterns[3]: "blackout" appears twice (also at patterns[1])`,
		}, ""},

		// categories: code is the first failing one; errors lists them all
		{"called and patterns", requestBody([]int{90}, "x"), "invalid_called", []string{
			"called[0]: 90 is not between 1 and 75",
			`patterns[0]: unknown pattern "x" (want line, four_corners or blackout)`,
		}, ""},
		{"all three", `{"card":` + rows4 + `,"called":[1,1],"patterns":[]}`, "invalid_card", []string{
			"card: want 5 rows, got 4",
			"called[1]: 1 was already called at called[0]",
			"patterns: must not be empty (leave it out for the default, line)",
		}, "The bingo request breaks 3 rules; see errors."},
		{"null body", `null`, "invalid_json", []string{"the request body must be a JSON object, not null"}, ""},
		{"empty object", `{}`, "invalid_card", []string{"card is required", "called is required"}, ""},

		// JSON
		{"empty body", ``, "invalid_json", []string{"the request body is empty; want a JSON object"},
			"The request body is not a valid JSON bingo request: the request body is empty; want a JSON object."},
		{"only whitespace", " \n", "invalid_json", []string{"the request body is empty; want a JSON object"}, ""},
		{"truncated", `{"card":[[1,2`, "invalid_json", []string{"the request body ends in the middle of a JSON value"}, ""},
		{"syntax error", `{"card": x}`, "invalid_json",
			[]string{"invalid JSON at byte offset 10: invalid character 'x' looking for beginning of value"}, ""},
		{"trailing comma", `{"card":[],}`, "invalid_json",
			[]string{"invalid JSON at byte offset 12: invalid character '}' looking for beginning of object key string"}, ""},
		{"trailing garbage", requestBody(nil) + " x", "invalid_json",
			[]string{fmt.Sprintf("unexpected data after the JSON object at byte offset %d", len(requestBody(nil))+1)}, ""},
		{"second object", `{}{}`, "invalid_json", []string{"unexpected data after the JSON object at byte offset 2"}, ""},
		{"unknown field", `{"card":` + card + `,"called":[],"cards":1}`, "invalid_json",
			[]string{`cards: unknown member (want card, called or patterns)`}, ""},
		{"long unknown field is shortened", `{"` + strings.Repeat("k", 100) + `":1}`, "invalid_json",
			[]string{`"` + strings.Repeat("k", 40) + `"...: unknown member (want card, called or patterns)`}, ""},
		{"string in card", `{"card":[[1, "x"]]}`, "invalid_json",
			[]string{"card[0][1]: want an integer, got a string"}, ""},
		{"object in card", `{"card":[[1,2],[3, {"a":[1]}, 4]]}`, "invalid_json",
			[]string{"card[1][1]: want an integer, got an object"}, ""},
		{"null row", `{"card":` + nullRow + `,"called":[]}`, "invalid_json",
			[]string{"card[2]: want an array of integers, got null"}, ""},
		{"flat card", `{"card":[1]}`, "invalid_json",
			[]string{"card[0]: want an array of integers, got the number 1"}, ""},
		{"card not an array", `{"card":{}}`, "invalid_json",
			[]string{"card: want an array of 5 rows, got an object"}, ""},
		{"fraction in called", `{"called":[1.5]}`, "invalid_json",
			[]string{"called[0]: want an integer, got the number 1.5"}, ""},
		{"integral fraction in called", `{"called":[1, 2.0]}`, "invalid_json",
			[]string{"called[1]: want an integer, got the number 2.0"}, ""},
		{"exponent in called", `{"called":[ 1e2 ]}`, "invalid_json",
			[]string{"called[0]: want an integer, got the number 1e2"}, ""},
		{"too large for int", `{"called":[9223372036854775808]}`, "invalid_json",
			[]string{"called[0]: want an integer, got the number 9223372036854775808"}, ""},
		{"long number is shortened", `{"called":[` + strings.Repeat("9", 100) + `]}`, "invalid_json",
			[]string{"called[0]: want an integer, got the number " + strings.Repeat("9", 40) + "..."}, ""},
		{"null in called", `{"called":[1,null]}`, "invalid_json",
			[]string{"called[1]: want an integer, got null"}, ""},
		{"called a string", `{"called":"1,2"}`, "invalid_json",
			[]string{"called: want an array of integers, got a string"}, ""},
		{"called a boolean", `{"called":false}`, "invalid_json",
			[]string{"called: want an array of integers, got a boolean"}, ""},
		{"pattern not a string", `{"patterns":["line",true]}`, "invalid_json",
			[]string{"patterns[1]: want a string, got a boolean"}, ""},
		{"patterns a string", `{"patterns":"line"}`, "invalid_json",
			[]string{"patterns: want an array of strings, got a string"}, ""},
		{"pattern an array", `{"patterns":[["line"]]}`, "invalid_json",
			[]string{"patterns[0]: want a string, got an array"}, ""},
		{"array body", `[1,2]`, "invalid_json", []string{"the request body must be a JSON object, not an array"}, ""},
		{"string body", `"card"`, "invalid_json", []string{"the request body must be a JSON object, not a string"}, ""},
		{"number body", `12`, "invalid_json", []string{"the request body must be a JSON object, not a number"}, ""},
		{"boolean body", `true`, "invalid_json", []string{"the request body must be a JSON object, not a boolean"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testkit.WantProblem(t, doCheck(t, http.MethodPost, "application/json", tt.body), http.StatusBadRequest, tt.code)
			if !slices.Equal(p.Errors, tt.errors) {
				t.Errorf("errors =\n\t%s\nwant\n\t%s", strings.Join(p.Errors, "\n\t"), strings.Join(tt.errors, "\n\t"))
			}
			if tt.detail != "" && p.Detail != tt.detail {
				t.Errorf("detail = %q, want %q", p.Detail, tt.detail)
			}
		})
	}
}

// TestCheckEscapedPatterns checks pattern names written with JSON
// escapes, which take the slow path of patternList.UnmarshalJSON.
func TestCheckEscapedPatterns(t *testing.T) {
	body := `{"card":` + cardJSON(testCard) + `,"called":` + intsJSON(allNumbers()) +
		`,"patterns":["\u0062lackout","four\u005fcorners"]}`
	resp := decodeOK(t, doCheck(t, http.MethodPost, "application/json", body))
	if got, want := resp.winStrings(), []string{"blackout", "four_corners"}; !slices.Equal(got, want) {
		t.Errorf("wins = %q, want %q", got, want)
	}
	p := testkit.WantProblem(t, doCheck(t, http.MethodPost, "application/json", `{"card":`+cardJSON(testCard)+`,"called":[],"patterns":["\"x\\"]}`),
		http.StatusBadRequest, "invalid_pattern")
	if want := []string{`patterns[0]: unknown pattern "\"x\\" (want line, four_corners or blackout)`}; !slices.Equal(p.Errors, want) {
		t.Errorf("errors = %q, want %q", p.Errors, want)
	}
}

// TestCheckStrictJSON sends each body that encoding/json reads leniently:
// 400 invalid_json, naming the member. Member names are case-sensitive.
func TestCheckStrictJSON(t *testing.T) {
	card := cardJSON(testCard)
	cases := []struct{ name, body, member, msg string }{
		{"duplicate", `{"card":` + card + `,"called":[1],"called":[2]}`, "called", "called: duplicate member"},
		{"another case", `{"Card":` + card + `,"CALLED":[]}`, "Card", `Card: unknown member; member names are case-sensitive: did you mean "card"?`},
		{"duplicate in another case", `{"card":` + card + `,"called":[],"Called":[]}`, "Called", `Called: duplicate member: "called" differs only in letter case`},
		{"raw invalid UTF-8", `{"card":` + card + `,"called":[],"patterns":["line` + "\xff" + `"]}`, "patterns[0]", "patterns[0]: invalid UTF-8"},
		{"lone surrogate", `{"card":` + card + `,"called":[],"patterns":["\ud800"]}`, "patterns[0]", `patterns[0]: invalid UTF-8: the escape \ud800 is a lone surrogate`},
		{"unknown", `{"card":` + card + `,"called":[],"pattern":["line"]}`, "pattern", "pattern: unknown member (want card, called or patterns)"},
		{"null patterns", `{"card":` + card + `,"called":[],"patterns":null}`, "patterns", "patterns: null is not allowed; omit the member for its default"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testkit.WantProblem(t, doCheck(t, http.MethodPost, "application/json", c.body), http.StatusBadRequest, "invalid_json")
			if p.Member != c.member || !slices.Equal(p.Errors, []string{c.msg}) {
				t.Errorf("member %q, errors %q; want %q, [%q]", p.Member, p.Errors, c.member, c.msg)
			}
		})
	}
}

func TestCheckTrailingWhitespace(t *testing.T) {
	decodeOK(t, doCheck(t, http.MethodPost, "application/json", " \t"+requestBody(rowOf(0))+"\r\n\n "))
}

func TestCheckMediaType(t *testing.T) {
	body := requestBody(rowOf(0))
	for _, ct := range []string{
		"application/json",
		"application/json; charset=utf-8",
		"Application/JSON;Charset=UTF-8",
		"APPLICATION/JSON",
	} {
		decodeOK(t, doCheck(t, http.MethodPost, ct, body))
	}
	for _, ct := range []string{
		"",
		"text/plain",
		"application/x-www-form-urlencoded",
		"application/jsonx",
		"application/problem+json",
		"application/json; charset", // malformed parameter
		"application/json,text/plain",
	} {
		t.Run(ct, func(t *testing.T) {
			rec := doCheck(t, http.MethodPost, ct, body)
			p := testkit.WantProblem(t, rec, http.StatusUnsupportedMediaType, "unsupported_media_type")
			if p.Errors != nil {
				t.Errorf("errors = %q, want none", p.Errors)
			}
			if got := rec.Header().Get("Accept-Post"); got != "application/json" {
				t.Errorf("Accept-Post = %q, want application/json", got)
			}
		})
	}
}

func TestCheckMethod(t *testing.T) {
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		t.Run(m, func(t *testing.T) {
			rec := doCheck(t, m, "application/json", requestBody(rowOf(0)))
			testkit.WantProblem(t, rec, http.StatusMethodNotAllowed, "method_not_allowed")
			if got := rec.Header().Get("Allow"); got != "POST" {
				t.Errorf("Allow = %q, want POST", got)
			}
		})
	}
}

func TestCheckBodySize(t *testing.T) {
	valid := requestBody(rowOf(0))
	pad := func(n int) string { return valid + strings.Repeat(" ", n-len(valid)) }
	tooLarge := "The request body is larger than 65536 bytes."

	// Exactly 64 KiB is accepted.
	decodeOK(t, doCheck(t, http.MethodPost, "application/json", pad(64<<10)))

	// One byte more is refused, with a declared length...
	p := testkit.WantProblem(t, doCheck(t, http.MethodPost, "application/json", pad(64<<10+1)), http.StatusRequestEntityTooLarge, "body_too_large")
	if p.Detail != tooLarge {
		t.Errorf("detail = %q, want %q", p.Detail, tooLarge)
	}

	// ...and without one (chunked), also when the JSON is bad early on.
	for _, body := range []string{pad(64<<10 + 1), "x" + strings.Repeat(" ", 100<<10)} {
		req := httptest.NewRequest(http.MethodPost, "/v1/bingo/check", strings.NewReader(body))
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		Check(rec, req)
		p := testkit.WantProblem(t, rec, http.StatusRequestEntityTooLarge, "body_too_large")
		if p.Detail != tooLarge {
			t.Errorf("detail = %q, want %q", p.Detail, tooLarge)
		}
	}
}

func TestCheckNilBody(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "/v1/bingo/check", nil)
	req.Body = nil
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	Check(rec, req)
	p := testkit.WantProblem(t, rec, http.StatusBadRequest, "invalid_json")
	if want := []string{"the request body is empty; want a JSON object"}; !slices.Equal(p.Errors, want) {
		t.Errorf("errors = %q, want %q", p.Errors, want)
	}
}

// errReader fails every read.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestCheckReadError(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "/v1/bingo/check", errReader{})
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	Check(rec, req)
	p := testkit.WantProblem(t, rec, http.StatusBadRequest, "invalid_json")
	if want := []string{"body: read failed"}; !slices.Equal(p.Errors, want) {
		t.Errorf("errors = %q, want %q", p.Errors, want)
	}
}

// refResult is what refCheck expects of the handler.
type refResult struct {
	status int
	code   string // for a problem
	errors int    // length of a problem's errors
	wins   []string
	marked [5][5]bool
}

// refCheck is a reference for the fuzz test, written from the rules rather
// than from the handler: it decodes with its own types, validates with
// formulas and sets, and finds wins by listing every pattern's squares.
func refCheck(body []byte) refResult {
	if len(body) > 64<<10 {
		return refResult{status: 413, code: "body_too_large"}
	}
	// Decode the fields as generic values, then convert them: card, called
	// and patterns must each be missing, null, or an array of the right
	// types (no nulls inside).
	var raw struct {
		Card     any `json:"card"`
		Called   any `json:"called"`
		Patterns any `json:"patterns"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	badJSON := refResult{status: 400, code: "invalid_json", errors: 1}
	if json.Valid(body) && testkit.StrictJSONReason(body, map[string][]string{"": {"card", "called", "patterns"}}) != "" {
		return badJSON
	}
	if err := dec.Decode(&raw); err != nil {
		return badJSON
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return badJSON
	}
	toInts := func(v any) ([]int, bool) {
		list, ok := v.([]any)
		if !ok {
			return nil, false
		}
		ints := []int{}
		for _, e := range list {
			num, ok := e.(json.Number)
			if !ok {
				return nil, false
			}
			n, err := strconv.ParseInt(string(num), 10, 0)
			if err != nil {
				return nil, false
			}
			ints = append(ints, int(n))
		}
		return ints, true
	}
	var req struct {
		Card     [][]int
		Called   []int
		Patterns []string
	}
	if raw.Card != nil {
		rows, ok := raw.Card.([]any)
		if !ok {
			return badJSON
		}
		req.Card = [][]int{}
		for _, r := range rows {
			row, ok := toInts(r)
			if !ok {
				return badJSON
			}
			req.Card = append(req.Card, row)
		}
	}
	if raw.Called != nil {
		var ok bool
		if req.Called, ok = toInts(raw.Called); !ok {
			return badJSON
		}
	}
	if raw.Patterns != nil {
		list, ok := raw.Patterns.([]any)
		if !ok {
			return badJSON
		}
		req.Patterns = []string{}
		for _, e := range list {
			name, ok := e.(string)
			if !ok {
				return badJSON
			}
			req.Patterns = append(req.Patterns, name)
		}
	}

	counts := map[string]int{}
	onCard := map[int]bool{}
	switch {
	case req.Card == nil:
		counts["invalid_card"]++
	default:
		if len(req.Card) != 5 {
			counts["invalid_card"]++
		}
		for r, row := range req.Card {
			if len(row) != 5 {
				counts["invalid_card"]++
				continue
			}
			for c, n := range row {
				if r == 2 && c == 2 {
					if n != 0 {
						counts["invalid_card"]++
					}
					continue
				}
				if n < 15*c+1 || n > 15*c+15 { // also catches 0
					counts["invalid_card"]++
				}
				if n >= 1 && n <= 75 {
					if onCard[n] {
						counts["invalid_card"]++
					}
					onCard[n] = true
				}
			}
		}
	}
	called := map[int]bool{}
	if req.Called == nil {
		counts["invalid_called"]++
	}
	for _, n := range req.Called {
		if n < 1 || n > 75 || called[n] {
			counts["invalid_called"]++
		}
		called[n] = true
	}
	patterns := req.Patterns
	if patterns == nil {
		patterns = []string{"line"}
	}
	if len(patterns) == 0 {
		counts["invalid_pattern"]++
	}
	seen := map[string]bool{}
	for _, p := range patterns {
		if (p != "line" && p != "four_corners" && p != "blackout") || seen[p] {
			counts["invalid_pattern"]++
		}
		seen[p] = true
	}
	for _, code := range []string{"invalid_card", "invalid_called", "invalid_pattern"} {
		if counts[code] > 0 {
			total := counts["invalid_card"] + counts["invalid_called"] + counts["invalid_pattern"]
			return refResult{status: 400, code: code, errors: min(total, 50)}
		}
	}

	res := refResult{status: 200, wins: []string{}}
	for r := range 5 {
		for c := range 5 {
			res.marked[r][c] = (r == 2 && c == 2) || called[req.Card[r][c]]
		}
	}
	type shape struct {
		name    string
		squares [][2]int
	}
	var lines []shape
	for r := range 5 {
		lines = append(lines, shape{fmt.Sprintf("line:row:%d", r), [][2]int{{r, 0}, {r, 1}, {r, 2}, {r, 3}, {r, 4}}})
	}
	for c := range 5 {
		lines = append(lines, shape{fmt.Sprintf("line:column:%d", c), [][2]int{{0, c}, {1, c}, {2, c}, {3, c}, {4, c}}})
	}
	lines = append(lines,
		shape{"line:diagonal:0", [][2]int{{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}}},
		shape{"line:diagonal:1", [][2]int{{0, 4}, {1, 3}, {2, 2}, {3, 1}, {4, 0}}})
	var every [][2]int
	for r := range 5 {
		for c := range 5 {
			every = append(every, [2]int{r, c})
		}
	}
	byPattern := map[string][]shape{
		"line":         lines,
		"four_corners": {{"four_corners", [][2]int{{0, 0}, {0, 4}, {4, 0}, {4, 4}}}},
		"blackout":     {{"blackout", every}},
	}
	for _, p := range patterns {
		for _, s := range byPattern[p] {
			won := true
			for _, sq := range s.squares {
				won = won && res.marked[sq[0]][sq[1]]
			}
			if won {
				res.wins = append(res.wins, s.name)
			}
		}
	}
	return res
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte(requestBody(rowOf(2))))
	f.Add([]byte(requestBody(allNumbers(), "blackout", "four_corners", "line")))
	f.Add([]byte(requestBody([]int{7, 71, 14, 69, 24, 60}, "four_corners", "line")))
	f.Add([]byte(requestBody([]int{1, 2, 3, 80, 2}, "x", "line", "line")))
	f.Add([]byte(requestBodyFor(cardWith(1, 3, 17), []int{17})))
	f.Add([]byte(`{"card":[[7,19,38,52,71],[3,24,41],[0,17,5,57,62,1],[80,28,0,60,7]],"called":[]}`))
	f.Add([]byte(`{"card":[[1,2,3,4,5]],"called":[1],"patterns":[],"x":1}`))
	f.Add([]byte(`{"card":[[1,"x"]]} `))
	f.Add([]byte(`{}{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"card":[[1,2],null,[3, {"a":["]"]}]],"called":[1,null]}`))
	f.Add([]byte(`{"Card":[[1, 16, 31, 46, 61 ],[2,17,32,47,62],[3,18,0,48,63],[4,19,34,49,64],[5,20,35,50,65]],` +
		`"CALLED":[1,2,3,4,5,-0,9223372036854775807],"patterns":["line","\u0062lackout","four_corners"]}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/bingo/check", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		Check(rec, req) // must not panic
		want := refCheck(body)

		if rec.Code != want.status {
			t.Fatalf("status = %d, want %d; body %s", rec.Code, want.status, rec.Body)
		}
		if want.status != http.StatusOK {
			p := testkit.WantProblem(t, rec, want.status, want.code)
			if len(p.Errors) != want.errors {
				t.Fatalf("%d errors, want %d: %q", len(p.Errors), want.errors, p.Errors)
			}
			return
		}
		resp := decodeOK(t, rec)
		if got := resp.winStrings(); !slices.Equal(got, want.wins) {
			t.Fatalf("wins = %q, want %q", got, want.wins)
		}
		if resp.Bingo != (len(want.wins) > 0) {
			t.Fatalf("bingo = %v, wins %q", resp.Bingo, want.wins)
		}
		if resp.Marked != want.marked {
			t.Fatalf("marked = %v, want %v", resp.Marked, want.marked)
		}
	})
}

// rewindBody is a request body that can be reset without allocating.
type rewindBody struct{ *bytes.Reader }

func (rewindBody) Close() error { return nil }

// benchWriter is a ResponseWriter that keeps nothing but the status.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(status int) {
	w.status = status
}
func (w *benchWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	return len(b), nil
}

func BenchmarkCheck(b *testing.B) {
	body := []byte(requestBody([]int{12, 57, 17, 62, 38, 41, 33, 44, 5, 7, 71, 14, 69, 24, 60}, "line", "four_corners", "blackout"))
	rd := bytes.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, "/v1/bingo/check", nil)
	req.Body = rewindBody{rd}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	w := &benchWriter{h: http.Header{}}

	Check(w, req)
	if w.status != http.StatusOK {
		b.Fatalf("status = %d", w.status)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		clear(w.h)
		w.status = 0
		Check(w, req)
	}
	if w.status != http.StatusOK {
		b.Fatalf("status = %d", w.status)
	}
}
