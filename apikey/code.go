package apikey

// Code says why a request was refused, for machines: the "code" member of
// every problem keygate writes, the end of its "type"
// (tag:keygate,2026:CODE), and Error.Code. docs/api.md says when each is
// sent.
type Code string

// The codes, with their HTTP status.
const (
	CodeMultipleAPIKeys      Code = "multiple_api_keys"      // 400: the key header twice
	CodeInvalidJSON          Code = "invalid_json"           // 400: a body not one JSON object of the endpoint's members
	CodeInvalidName          Code = "invalid_name"           // 400: a keys API field or parameter
	CodeInvalidScopes        Code = "invalid_scopes"         // 400
	CodeInvalidExpiresIn     Code = "invalid_expires_in"     // 400
	CodeInvalidGrace         Code = "invalid_grace"          // 400
	CodeInvalidLimit         Code = "invalid_limit"          // 400
	CodeInvalidPageToken     Code = "invalid_page_token"     // 400
	CodeInvalidDate          Code = "invalid_date"           // 400: the usage endpoints' from or to
	CodeMalformedReport      Code = "malformed_report"       // 400: a secret scanning report
	CodeUnreadable           Code = "unreadable"             // 400: a secret scanning report
	CodeMissingAPIKey        Code = "missing_api_key"        // 401
	CodeInvalidAPIKey        Code = "invalid_api_key"        // 401: malformed, unknown or revoked, alike
	CodeExpiredAPIKey        Code = "expired_api_key"        // 401
	CodeMissingSignature     Code = "missing_signature"      // 401: a secret scanning report
	CodeBadSignature         Code = "bad_signature"          // 401: a secret scanning report
	CodeUnknownKeyIdentifier Code = "unknown_key_identifier" // 401: a secret scanning report
	CodeInsufficientScope    Code = "insufficient_scope"     // 403: Error.Scope names the scope
	CodeNotFound             Code = "not_found"              // 404: no endpoint at the path
	CodeKeyNotFound          Code = "key_not_found"          // 404: no key with the ID for the caller's owner
	CodeMethodNotAllowed     Code = "method_not_allowed"     // 405
	CodeKeyNotActive         Code = "key_not_active"         // 409: rotating a revoked or expired key
	CodeKeyReplaced          Code = "key_replaced"           // 409: rotating a key rotated already
	CodeKeyLimitReached      Code = "key_limit_reached"      // 409: the owner's max_keys
	CodeInvalidOwner         Code = "invalid_owner"          // 409: a stored owner that is not valid
	CodeBodyTooLarge         Code = "body_too_large"         // 413: over 64 KiB
	CodeTooLarge             Code = "too_large"              // 413: a secret scanning report over 2 MiB
	CodeTooManyMatches       Code = "too_many_matches"       // 413: a secret scanning report over 1000 matches
	CodeUnsupportedMediaType Code = "unsupported_media_type" // 415
	CodeRateLimited          Code = "rate_limited"           // 429: Error.Limit says whose
	CodeQuotaExceeded        Code = "quota_exceeded"         // 429: Error.Limit says whose
	CodeTooManyUnknownKeys   Code = "too_many_unknown_keys"  // 429: the key was not checked
	CodeMisconfigured        Code = "misconfigured"          // 500: the log says how
	CodeInternal             Code = "internal"               // 500: a response that could not be encoded
	CodeStoreUnavailable     Code = "store_unavailable"      // 503: the key was not checked
	CodeStoreBusy            Code = "store_busy"             // 503: contention kept a key write out
	CodeOutcomeUnknown       Code = "outcome_unknown"        // 503: a key write that may have taken effect
	CodeShuttingDown         Code = "shutting_down"          // 503: Close has begun
	CodeKeysUnavailable      Code = "keys_unavailable"       // 503: GitHub's signing keys could not be read
)
