package openapi

import "net/http"

// Code is a problem code an operation may answer with: its status, when it
// is sent, the headers that come with it, and a real detail for its example.
// The table below holds keygate's (every apikey.Code, TestCodesMatchAPIKey);
// an application adds its own with Document.AddCode.
type Code struct {
	Code    string
	Status  int
	When    string          // when it is sent, for the response's description
	Detail  string          // the detail of its example, as keygate writes it
	Headers map[string]bool // the headers it comes with: true if always
}

// The headers of the codes, by the name of their component.
var (
	challenge   = map[string]bool{"WWW-Authenticate": true}
	retry       = map[string]bool{"Retry-After": true}
	rateLimited = map[string]bool{"Retry-After": true, "RateLimit-Limit": true, "RateLimit-Remaining": true, "RateLimit-Reset": true}
	quota       = map[string]bool{"Retry-After": true, "RateLimit-Limit": false, "RateLimit-Remaining": false, "RateLimit-Reset": false}
)

// codes are keygate's codes, in the order of docs/api.md's table.
var codes = []Code{
	{"multiple_api_keys", http.StatusBadRequest, "the key header came twice with different values", "Send one API key in one X-API-Key header, not several.", nil},
	{"missing_api_key", http.StatusUnauthorized, "no key header, or an empty one", "Send your API key in the X-API-Key header.", challenge},
	{"invalid_api_key", http.StatusUnauthorized, "a malformed, unknown or revoked key, one answer for the three (or, with the key in Authorization, a scheme other than Bearer)", "The API key is not valid.", challenge},
	{"expired_api_key", http.StatusUnauthorized, "the key's `expires_at` has passed", "The API key has expired.", challenge},
	{"insufficient_scope", http.StatusForbidden, "the key lacks the scope needed, named in `scope`", "This API key lacks the scope keys:manage.", nil},
	{"not_found", http.StatusNotFound, "no such path", "There is no endpoint at \"/v2\".", nil},
	{"key_not_found", http.StatusNotFound, "no key with that ID for the caller's owner: another owner's key is answered alike", "There is no key with this ID.", nil},
	{"method_not_allowed", http.StatusMethodNotAllowed, "the path exists, the method does not; `Allow` lists the methods", "\"PUT\" is not allowed here; use GET, HEAD.", map[string]bool{"Allow": true}},
	{"key_not_active", http.StatusConflict, "rotating a revoked or expired key", "Only an active key can be rotated; this one is revoked.", nil},
	{"key_replaced", http.StatusConflict, "rotating a key that a rotation replaced already, while its replacement is active: rotate the replacement", "This key was rotated already and its replacement is active: rotate the replacement instead, or revoke it to rotate this key again.", nil},
	{"key_limit_reached", http.StatusConflict, "the owner holds its `max_keys` active keys (a rotation: more than `max_keys`), which `max_keys` names", "The owner already holds the most active keys its plan allows, max_keys 3. Revoke one to make room.", nil},
	{"invalid_owner", http.StatusConflict, "the caller's stored owner is not a valid owner name, so it can hold no new keys", "This key's owner is not a valid owner name, so it can hold no new keys. Ask the operator.", nil},
	{"invalid_json", http.StatusBadRequest, "the body is not one JSON object of the operation's members, read strictly (a member twice or in another letter case, an unknown member, invalid UTF-8, null, trailing data); `member` names the member", "The request body is not a valid JSON request: owner: unknown member (want name, scopes or expires_in).", nil},
	{"invalid_name", http.StatusBadRequest, "`name` is too long or holds a control or format character", "name: is 101 characters long: want at most 100.", nil},
	{"invalid_scopes", http.StatusBadRequest, "`scopes` is empty, too long, or holds a malformed or repeated scope", "scopes: scope \"Bingo\" is not a scope name: want words of a-z, 0-9, '_', '-' and '.' joined by ':', at most 64 bytes, such as things:read.", nil},
	{"invalid_expires_in", http.StatusBadRequest, "`expires_in` is not a Go duration from 1s to 87600h", "expires_in: \"1y\": want a Go duration from 1s to 87600h, such as 720h (30 days).", nil},
	{"invalid_grace", http.StatusBadRequest, "`grace` is not a Go duration from 0s to 720h", "grace: \"1000h\": want a Go duration from 0s to 720h, such as 24h.", nil},
	{"invalid_limit", http.StatusBadRequest, "`limit` is not a whole number from 1 to 100", "limit: \"0\": want a whole number from 1 to 100.", nil},
	{"invalid_page_token", http.StatusBadRequest, "`page_token` is not a `next_page_token` (malformed, or crafted)", "page_token: not a token from next_page_token.", nil},
	{"invalid_date", http.StatusBadRequest, "`from` or `to` is not a date YYYY-MM-DD, `to` is before `from`, or the range is longer than 92 days", "from: \"yesterday\" is not a date YYYY-MM-DD.", nil},
	{"body_too_large", http.StatusRequestEntityTooLarge, "a body over 64 KiB", "The request body is larger than 65536 bytes.", nil},
	{"unsupported_media_type", http.StatusUnsupportedMediaType, "a body that is not `application/json`; `Accept-Post` says what is", "The request body must be application/json.", map[string]bool{"Accept-Post": true}},
	{"malformed_report", http.StatusBadRequest, "a signed report that is not a JSON array of matches", "The report is not a JSON array of matches.", nil},
	{"unreadable", http.StatusBadRequest, "a report whose body could not be read", "The report could not be read.", nil},
	{"missing_signature", http.StatusUnauthorized, "a report without GitHub's key identifier or signature header", "The report is not signed by a key GitHub publishes.", nil},
	{"bad_signature", http.StatusUnauthorized, "a report whose signature does not verify", "The report is not signed by a key GitHub publishes.", nil},
	{"unknown_key_identifier", http.StatusUnauthorized, "a report signed with a key GitHub does not publish", "The report is not signed by a key GitHub publishes.", nil},
	{"too_large", http.StatusRequestEntityTooLarge, "a report over 2 MiB", "The report is larger than 2 MiB.", nil},
	{"too_many_matches", http.StatusRequestEntityTooLarge, "a report of more than 1000 matches", "The report holds more than 1000 matches.", nil},
	{"keys_unavailable", http.StatusServiceUnavailable, "GitHub's signing keys could not be fetched for the report's key identifier yet", "GitHub's signing keys cannot be checked for this key identifier right now. Retry shortly.", retry},
	{"rate_limited", http.StatusTooManyRequests, "the key is over its own rate limit or its owner over its plan's (`limit`: `key` or `owner`), or, on the key and usage endpoints, its owner over its management budget (`limit`: `management`)", "The API key is over its own rate limit. Retry after the number of seconds in Retry-After.", rateLimited},
	{"quota_exceeded", http.StatusTooManyRequests, "the key has used its own monthly quota, or its owner its plan's (`limit`: `key` or `owner`); `Retry-After` runs to the next UTC month", "The API key has used its own monthly quota of 1000 requests; it resets at the start of the next UTC month.", quota},
	{"too_many_unknown_keys", http.StatusTooManyRequests, "the client address, or the instance, has sent too many keys that do not exist; the key was not checked", "Too many unknown API keys from this client address (for IPv6, its /64). Retry after the number of seconds in Retry-After.", retry},
	{"misconfigured", http.StatusInternalServerError, "a configuration variable is bad, or the endpoint is mounted wrongly; the log says how", "The service is misconfigured; its logs say how.", nil},
	{"internal", http.StatusInternalServerError, "a response that could not be encoded (not expected to happen)", "The response could not be encoded.", nil},
	{"store_unavailable", http.StatusServiceUnavailable, "the store did not answer (and the key has no usable cache entry): never a 401, since the key may be valid", "API keys cannot be checked right now. Retry shortly.", retry},
	{"outcome_unknown", http.StatusServiceUnavailable, "a key write was sent, its answer lost and reading it back failed: it may or may not have taken effect; read the key before you retry (a create's detail names the new key's ID)", "The change was sent, but the store's answer was lost and reading it back failed: it may or may not have taken effect. Read the key (GET its URL, or list the keys) before you retry.", nil},
	{"store_busy", http.StatusServiceUnavailable, "a key write that other writes to the same keys kept out until STORE_TIMEOUT", "The key store is busy with other changes to the same keys, and this one did not get through in time. Retry shortly.", retry},
	{"shutting_down", http.StatusServiceUnavailable, "the instance is shutting down; retry on a new connection", "This instance is shutting down. Retry now.", map[string]bool{"Retry-After": true, "Connection": true}},
}

// The codes of what stands before an operation (Guard).
var (
	// authCodes are the Gate's refusals of the key itself, and of a
	// function whose configuration is bad, before any route.
	authCodes = []string{"multiple_api_keys", "missing_api_key", "invalid_api_key", "expired_api_key", "too_many_unknown_keys", "store_unavailable", "misconfigured"}
	// protectCodes are Protect's, after the key: the limits and quotas,
	// and the meter closed by a shutdown.
	protectCodes = []string{"rate_limited", "quota_exceeded", "shutting_down"}
	// manageCodes are Manage's: the owner's management budget.
	manageCodes = []string{"rate_limited"}
)
