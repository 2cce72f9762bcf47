// Package apikey puts API-key authentication in front of Go HTTP handlers,
// with the keys kept in Firestore as SHA-256 hashes: built for Cloud
// Functions (Cloud Run functions), where a package-level Gate and its
// in-memory cache live across warm invocations, so that the hot path does
// not touch the database.
//
// # Protecting a handler
//
// Build one Gate per process, from the environment in production and with
// New in tests (package apikeytest gives a test a Gate on a memory store
// and keys for it, one call each), and put your handlers behind it. A
// Cloud Function of your own (examples/protect in the repository, with its
// tests and a cmd/main.go that runs it locally) builds its Gate on first
// use, so that go test, which runs init, never reaches for Firestore, and
// its tests call NewHandler with a Gate of their own:
//
//	func init() { functions.HTTP("Things", Things) }
//
//	func NewHandler(gate *apikey.Gate) http.Handler {
//		return gate.Protect("things:read", http.HandlerFunc(listThings))
//	}
//
//	var handler = sync.OnceValues(func() (http.Handler, error) {
//		gate, err := apikey.FromEnv()
//		if err != nil {
//			return nil, err // a bad variable, named
//		}
//		gate.CloseOnSignal() // on SIGTERM, write the last usage counts
//		return NewHandler(gate), nil
//	})
//
//	func Things(w http.ResponseWriter, r *http.Request) {
//		h, err := handler()
//		if err != nil {
//			log.Print(err)
//			http.Error(w, "misconfigured", http.StatusInternalServerError)
//			return
//		}
//		h.ServeHTTP(w, r)
//	}
//
//	func listThings(w http.ResponseWriter, r *http.Request) {
//		key, _ := apikey.FromContext(r.Context())
//		fmt.Fprintf(w, "things of %s\n", key.Owner)
//	}
//
// [FromEnv] does not wait for the store; [Gate.Check] reads it once and
// says what is wrong (no credentials, no emulator), for a start-up check or
// a readiness probe.
//
// [Gate.Protect] lets a request through only with a valid key in the
// X-API-Key header (Config.Header) that grants the scope, within the key's
// and its owner's rate limits and monthly quotas, and counts it. Every
// other request gets an RFC 9457 problem (see [Error] for the codes) from
// one refusal path, which logs it; [WithErrorHandler] writes your own body
// instead. [Gate.Require] is Protect as router middleware,
// func(http.Handler) http.Handler (chi's With, for one);
// [Gate.Authenticate] checks the key only, for a router whose routes are
// behind Protect.
//
// # Keys and scopes
//
// A key looks like kg_ followed by 43 base62 characters and a 6-character
// checksum (package keyformat); only its SHA-256, the key's ID, is stored.
// Operators mint keys with the CLI, github.com/keygate/keygate/cmd/apikey;
// key holders manage their own through [Gate.KeysHandlers] (and read any
// one's usage through [Gate.KeyUsageHandler]), read their own usage through
// [Gate.UsageHandler] and their own key through [Gate.WhoAmIHandler],
// mounted where you like behind Protect; those of one key read its ID
// from the path value "id" (see [KeysHandlers]).
// [Gate.GitHubSecretScanningHandler], mounted without Protect, revokes the
// keys GitHub's secret scanning finds in public code, on its signed report.
// Every request body is read
// strictly: a member twice or in another letter case, an unknown member,
// invalid UTF-8 and null are refused, naming the member.
// No key ever mints, rotates or revokes a key broader than itself.
//
// Scopes belong to the application: the Gate knows none in advance. A
// scope is words of lowercase letters, digits, '_', '-' and '.', joined by
// ':', at most 64 bytes, such as "things:read" (store.ValidScope). A key
// stored without scopes grants Config.DefaultScopes (KEY_DEFAULT_SCOPES).
//
// # Caching, outages and revocation
//
// A key read from the store is served from memory for KEY_CACHE_TTL (60 s),
// then served while a background read refreshes it, and while the store is
// down for up to KEY_STALE_TTL (10 min). Only a key with nothing cached
// waits for the store, at most STORE_TIMEOUT (2 s), and then gets 503,
// never a wrong 401. Reads of keys that turn out not to exist are budgeted
// per client address and per instance, so floods of forged keys cost the
// store little.
//
// A key revoked, rotated or deleted, or a plan changed, through keygate (a
// Gate's keys API, or the CLI) is refused or applied on every instance
// within 2 s: every such write records a change in the store's change feed
// (store.ChangeStore), in the same transaction, and each Gate reads the
// feed from its requests: in the background once its last read is a second
// old, so a busy instance never waits and reads the feed at most once a
// second; and before answering once it is 2 s old, so an instance that was
// idle, or CPU-throttled between requests as on Cloud Run, waits for one
// read (at most STORE_TIMEOUT). An idle instance makes no store call. With
// the store down, requests are answered on the last known state (cached
// keys within KEY_STALE_TTL), logged, never refused for it. A document
// edited outside keygate records no change: it is seen when the entry is
// read again, within KEY_CACHE_TTL.
//
// # Usage, quotas and shutdown
//
// The Gate counts each request it lets through, per key and owner and UTC
// day, and writes the counts in batches (package meter), each applied once.
// Call [Gate.Close] before the process ends ([Gate.CloseOnSignal] does it
// on SIGTERM, as Cloud Run warns an instance): it refuses new requests with
// 503, waits for those it counted, and writes the last counts, retrying
// until its deadline; what it could not write it logs as usage_unwritten
// entries, which `apikey usage replay` (meter.Replay) writes later, once.
//
// Rate limits and monthly quotas hold per instance by default. With
// Config.RedisURL (REDIS_URL) they hold across all instances, on a Redis or
// Valkey server (Memorystore) that they share: one atomic script, one round
// trip, per limited request, within REDIS_TIMEOUT (50 ms); while the server
// does not answer, the per-instance limits apply, and the store stays the
// usage record.
//
// # Stores
//
// firestorestore.Store keeps everything in Firestore; memstore.Store in
// memory, for tests and demos. Any other [Store] can be checked with the
// contract suite in package storetest. Every store call gets the deadline
// STORE_TIMEOUT from the Gate (store.WithTimeout).
//
// docs/reference.md in the repository lists every environment variable
// (see [LoadConfig]), the Firestore schema and the numbers behind each
// promise above; docs/api.md the endpoints' requests and responses.
package apikey
