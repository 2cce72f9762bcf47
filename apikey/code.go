package apikey

// Code says why a request was refused, for machines: Error.Code, and the
// "code" of every problem keygate writes. docs/api.md says when each is sent.
type Code string

// The codes of an Error, and those an application's handlers may answer
// with, with their HTTP status.
const (
	CodeMultipleAPIKeys    Code = "multiple_api_keys"     // 400: the key header twice
	CodeMissingAPIKey      Code = "missing_api_key"       // 401
	CodeInvalidAPIKey      Code = "invalid_api_key"       // 401: malformed, unknown or revoked, alike
	CodeExpiredAPIKey      Code = "expired_api_key"       // 401
	CodeInsufficientScope  Code = "insufficient_scope"    // 403: Error.Scope names the scope
	CodeNotFound           Code = "not_found"             // 404: no endpoint at the path
	CodeMethodNotAllowed   Code = "method_not_allowed"    // 405
	CodeRateLimited        Code = "rate_limited"          // 429: Error.Limit says whose
	CodeQuotaExceeded      Code = "quota_exceeded"        // 429: Error.Limit says whose
	CodeTooManyUnknownKeys Code = "too_many_unknown_keys" // 429: the key was not checked
	CodeMisconfigured      Code = "misconfigured"         // 500: the log says how
	CodeStoreUnavailable   Code = "store_unavailable"     // 503: the key was not checked
	CodeStoreBusy          Code = "store_busy"            // 503: contention kept a key write out
	CodeOutcomeUnknown     Code = "outcome_unknown"       // 503: a key write that may have taken effect
	CodeShuttingDown       Code = "shutting_down"         // 503: Close has begun
)

// The codes only keygate's own endpoints answer with (the keys API, the
// usage endpoints, the secret scanning endpoint, the strict JSON reader),
// typed like the rest so that every answer is written through a Code;
// docs/api.md says when each is sent.
const (
	codeInvalidJSON          Code = "invalid_json"           // 400: a body not one JSON object of the endpoint's members
	codeInvalidName          Code = "invalid_name"           // 400: a keys API field or parameter
	codeInvalidScopes        Code = "invalid_scopes"         // 400
	codeInvalidExpiresIn     Code = "invalid_expires_in"     // 400
	codeInvalidGrace         Code = "invalid_grace"          // 400
	codeInvalidLimit         Code = "invalid_limit"          // 400
	codeInvalidPageToken     Code = "invalid_page_token"     // 400
	codeInvalidDate          Code = "invalid_date"           // 400: the usage endpoints' from or to
	codeMalformedReport      Code = "malformed_report"       // 400: a secret scanning report
	codeUnreadable           Code = "unreadable"             // 400: a secret scanning report
	codeMissingSignature     Code = "missing_signature"      // 401: a secret scanning report
	codeBadSignature         Code = "bad_signature"          // 401: a secret scanning report
	codeUnknownKeyIdentifier Code = "unknown_key_identifier" // 401: a secret scanning report
	codeKeyNotFound          Code = "key_not_found"          // 404: no key with the ID for the caller's owner
	codeKeyNotActive         Code = "key_not_active"         // 409: rotating a revoked or expired key
	codeKeyReplaced          Code = "key_replaced"           // 409: rotating a key rotated already
	codeKeyLimitReached      Code = "key_limit_reached"      // 409: the owner's max_keys
	codeInvalidOwner         Code = "invalid_owner"          // 409: a stored owner that is not valid
	codeBodyTooLarge         Code = "body_too_large"         // 413: over 64 KiB
	codeTooLarge             Code = "too_large"              // 413: a secret scanning report over 2 MiB
	codeTooManyMatches       Code = "too_many_matches"       // 413: a secret scanning report over 1000 matches
	codeUnsupportedMediaType Code = "unsupported_media_type" // 415
	codeInternal             Code = "internal"               // 500: a response that could not be encoded
	codeKeysUnavailable      Code = "keys_unavailable"       // 503: GitHub's signing keys could not be fetched for the identifier yet
)
