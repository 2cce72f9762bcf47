package apikey_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
)

func ExampleNew() {
	// Keys live in a store: Firestore in production (see FromEnv), memory
	// here. Mint one for the customer acme; the key itself is shown once and
	// never stored.
	keys := memstore.New()
	key, k, _ := keyrules.Mint("kg", store.Key{Owner: "acme", Name: "demo", Scopes: []string{"things:read"}, CreatedAt: time.Now()})
	keys.Create(context.Background(), k)

	gate := apikey.New(apikey.DefaultConfig(), keys, apikey.WithLogger(slog.New(slog.DiscardHandler)))
	defer gate.Close(context.Background()) // writes the last usage counts

	things := gate.Protect("things:read", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := apikey.FromContext(r.Context())
		fmt.Fprintln(w, "things of", k.Owner)
	}))

	r := httptest.NewRequest("GET", "/things", nil)
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	things.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body)
	// Output: 200 things of acme
}

func ExampleGate_Protect() {
	keys := memstore.New()
	key, k, _ := keyrules.Mint("kg", store.Key{Owner: "acme", Scopes: []string{"things:read"}})
	keys.Create(context.Background(), k)
	gate := apikey.New(apikey.DefaultConfig(), keys, apikey.WithLogger(slog.New(slog.DiscardHandler)))
	defer gate.Close(context.Background())

	// One scope per route; "" lets any valid key through.
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("GET /things", gate.Protect("things:read", ok))
	mux.Handle("POST /things", gate.Protect("things:write", ok))

	for _, c := range []struct{ method, key string }{{"GET", key}, {"POST", key}, {"GET", ""}} {
		r := httptest.NewRequest(c.method, "/things", nil)
		if c.key != "" {
			r.Header.Set("X-API-Key", c.key)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		var problem struct{ Code string } // the refusal's RFC 9457 problem
		json.Unmarshal(w.Body.Bytes(), &problem)
		fmt.Println(c.method, w.Code, cmp.Or(problem.Code, "ok"))
	}
	// Output:
	// GET 200 ok
	// POST 403 insufficient_scope
	// GET 401 missing_api_key
}

func ExampleFromContext() {
	// A key stored without scopes grants Config.DefaultScopes.
	cfg := apikey.DefaultConfig()
	cfg.DefaultScopes = []string{"things:read"}
	keys := memstore.New()
	key, k, _ := keyrules.Mint("kg", store.Key{Owner: "acme", Name: "ci"})
	keys.Create(context.Background(), k)
	gate := apikey.New(cfg, keys, apikey.WithLogger(slog.New(slog.DiscardHandler)))
	defer gate.Close(context.Background())

	h := gate.Protect("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, ok := apikey.FromContext(r.Context())
		fmt.Println(ok, k.Owner, k.Name, k.Scopes)
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", key)
	h.ServeHTTP(httptest.NewRecorder(), r)
	// Output: true acme ci [things:read]
}

func ExampleGate_KeysHandlers() {
	keys := memstore.New()
	admin, k, _ := keyrules.Mint("kg", store.Key{Owner: "acme", Scopes: []string{"keys:manage", "things:read"}})
	keys.Create(context.Background(), k)
	gate := apikey.New(apikey.DefaultConfig(), keys, apikey.WithLogger(slog.New(slog.DiscardHandler)))
	defer gate.Close(context.Background())

	// The key holders' own endpoints, under a prefix and a scope of your
	// choice.
	kh := gate.KeysHandlers()
	mux := http.NewServeMux()
	mux.Handle("POST /v1/keys", gate.Manage("keys:manage", kh.Create))
	mux.Handle("GET /v1/keys", gate.Manage("keys:manage", kh.List))
	mux.Handle("GET /v1/keys/{id}", gate.Manage("keys:manage", kh.Get))
	mux.Handle("DELETE /v1/keys/{id}", gate.Manage("keys:manage", kh.Revoke))
	mux.Handle("POST /v1/keys/{id}/rotate", gate.Manage("keys:manage", kh.Rotate))

	// A key with the keys:manage scope mints a narrower one for acme.
	r := httptest.NewRequest("POST", "/v1/keys", strings.NewReader(`{"name":"ci","scopes":["things:read"]}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-API-Key", admin)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	var created struct { // docs/api.md documents every member
		ID, Key, Owner, Name, Status string
		Scopes                       []string
	}
	json.Unmarshal(w.Body.Bytes(), &created)
	fmt.Println(w.Code, w.Header().Get("Location") == "/v1/keys/"+created.ID)
	fmt.Println(created.Owner, created.Name, created.Scopes, created.Status)
	// Output:
	// 201 true
	// acme ci [things:read] active
}

func ExampleKeysHandlers_usage() {
	keys := memstore.New()
	key, k, _ := keyrules.Mint("kg", store.Key{Owner: "acme", Scopes: []string{"usage:read"}, MonthlyQuota: 1000})
	keys.Create(context.Background(), k)
	gate := apikey.New(apikey.DefaultConfig(), keys, apikey.WithLogger(slog.New(slog.DiscardHandler)))
	defer gate.Close(context.Background())

	mux := http.NewServeMux()
	mux.Handle("GET /v1/usage", gate.Manage("usage:read", gate.KeysHandlers().Usage))

	// Requests to the usage and key endpoints are management: they are not
	// counted, nor refused by the data plane's quotas and rate limits.
	r := httptest.NewRequest("GET", "/v1/usage", nil)
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	var usage struct { // docs/api.md documents every member
		MonthTotal   int64  `json:"month_total"`
		MonthlyQuota *int64 `json:"monthly_quota"`
		Owner        struct {
			MonthTotal int64 `json:"month_total"`
		}
	}
	json.Unmarshal(w.Body.Bytes(), &usage)
	fmt.Println(w.Code, usage.MonthTotal, *usage.MonthlyQuota, usage.Owner.MonthTotal)
	// Output: 200 0 1000 0
}

func ExampleWithErrorHandler() {
	// Refusals in the application's own error format, rather than RFC 9457
	// problems. The Gate has logged the refusal and set its headers
	// (WWW-Authenticate, Retry-After, RateLimit-*) already.
	onError := func(w http.ResponseWriter, r *http.Request, err *apikey.Error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(err.Status)
		json.NewEncoder(w).Encode(map[string]string{"error": string(err.Code), "message": err.Detail})
	}
	gate := apikey.New(apikey.DefaultConfig(), memstore.New(),
		apikey.WithErrorHandler(onError), apikey.WithLogger(slog.New(slog.DiscardHandler)))
	defer gate.Close(context.Background())

	h := gate.Protect("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	fmt.Print(w.Code, " ", w.Body)
	// Output: 401 {"error":"missing_api_key","message":"Send your API key in the X-API-Key header."}
}

// The shape of a Cloud Function (or any server) in front of Firestore: the
// Gate is built once, by the first request, and kept across warm
// invocations, where it caches keys; on SIGTERM it is closed, so that the
// last usage counts are written.
func ExampleFromEnv() {
	things := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "things")
	})

	// A package-level var in a real function.
	handler := sync.OnceValues(func() (http.Handler, error) {
		gate, err := apikey.FromEnv()
		if err != nil {
			return nil, err // names the bad variable
		}
		go func() {
			// Cloud Run stops an instance 10 seconds after its SIGTERM.
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
			<-ctx.Done()
			stop()
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			gate.Close(ctx)
			cancel()
			os.Exit(0) // as SIGTERM would have
		}()
		mux := http.NewServeMux()
		mux.Handle("GET /things", gate.Protect("things:read", things))
		return mux, nil
	})

	// The function's entry point: functions.HTTP("API", api) in init.
	api := func(w http.ResponseWriter, r *http.Request) {
		h, err := handler()
		if err != nil {
			slog.Error("misconfigured", "error", err)
			http.Error(w, "misconfigured", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	}
	http.HandleFunc("/", api)
}
