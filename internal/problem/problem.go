package problem

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// TypePrefix starts the "type" member of every problem keygate
// writes. It is a tag URI (RFC 4151), which RFC 9457 allows for problem types
// that are identifiers rather than links; the code after the colon is the same
// as the "code" member.
const TypePrefix = "tag:keygate,2026:"

// The codes of the problems this package writes itself: apikey.Code
// documents them with the others, and apikey's TestCodes checks that they
// are the same.
const (
	CodeInvalidJSON          = "invalid_json"
	CodeBodyTooLarge         = "body_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeInternal             = "internal"
)

// Problem is an RFC 9457 problem details object, with keygate's
// machine-readable Code and, for validation failures, the list of Errors.
type Problem struct {
	Type   string   `json:"type"`
	Title  string   `json:"title"`
	Status int      `json:"status"`
	Detail string   `json:"detail,omitempty"`
	Code   string   `json:"code"`
	Errors []string `json:"errors,omitempty"`
	// Member names the member of the request body at fault in an
	// invalid_json problem, as a path such as "scopes[1]", when it is known.
	Member string `json:"member,omitempty"`
	// Scope names the missing scope of an insufficient_scope problem.
	Scope string `json:"scope,omitempty"`
	// Limit says whose limit a rate_limited or quota_exceeded problem hit:
	// "key" (the key's own) or "owner" (its owner's plan).
	Limit string `json:"limit,omitempty"`
	// MaxKeys is the owner's max_keys in a key_limit_reached problem.
	MaxKeys int `json:"max_keys,omitempty"`
}

// New returns the problem with the given status, code (an apikey.Code) and
// detail; the title is the status text.
func New[C ~string](status int, code C, detail string) *Problem {
	return &Problem{
		Type:   TypePrefix + string(code),
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   string(code),
	}
}

// Write writes p as application/problem+json.
func Write(w http.ResponseWriter, p *Problem) {
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: Problem holds only strings and ints
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	w.Write(append(body, '\n'))
}

// SetRetryAfter sets Retry-After to d in whole seconds, rounded up, at least
// one.
func SetRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(max(d, time.Second).Seconds())), 10))
}

// WriteJSON writes v as application/json with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		Write(w, New(http.StatusInternalServerError, CodeInternal, "The response could not be encoded."))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
