package apikey

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/apikey/storetest"
	"github.com/keygate/keygate/internal/testkit"
)

// listCalls is a store that records the limit of every ListByOwner call.
type listCalls struct {
	store.Store
	mu     sync.Mutex
	limits []int
}

func (s *listCalls) ListByOwner(ctx context.Context, owner string, after *store.PagePosition, limit int) (store.KeyPage, error) {
	s.mu.Lock()
	s.limits = append(s.limits, limit)
	s.mu.Unlock()
	return s.Store.ListByOwner(ctx, owner, after, limit)
}

// take returns the limits recorded since the last take.
func (s *listCalls) take() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limits
	s.limits = nil
	return l
}

// TestListCallsContract: the recording store is a store like any other.
func TestListCallsContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return &listCalls{Store: memstore.New()} })
}

// seedOwnerKeys stores n keys of owner, a few at once, and returns them in
// keyrules.ListOrder. Every third key shares its creation time with the one before,
// so that ties are paged too.
func seedOwnerKeys(t *testing.T, s store.KeyStore, owner string, n int) []store.Key {
	t.Helper()
	keys := make([]store.Key, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		_, k, err := keyrules.Mint("kg", store.Key{Owner: owner, Name: fmt.Sprint("key ", i),
			CreatedAt: t0.Add(-time.Duration(i-i/3) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = store.Stored(k)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = s.Create(context.Background(), k)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(keys, keyrules.ListOrder)
	return keys
}

// TestKeysListReadsOnePage is GET /v1/keys?limit=1 for an owner with 500
// keys, on Firestore: one key and a next_page_token, from one ListByOwner
// call of limit 1, and the token's page the next key, likewise. Such a call
// reads at most 2 documents however many keys the owner has
// (firestorestore's TestListReadsOnePage counts them).
func TestKeysListReadsOnePage(t *testing.T) {
	calls := &listCalls{Store: testkit.EmulatorStore(t)}
	s := newServer(t, calls, func(c *Config) { c.StoreTimeout = emulatorConfig().StoreTimeout })
	admin, _ := s.mint(t, "acme", func(k *store.Key) {
		k.Scopes = []string{scopeKeys, scopeThings, scopeUsage}
		k.CreatedAt = t0.Add(-time.Hour)
	})
	keys := seedOwnerKeys(t, calls, "acme", 499)
	token := ""
	for i := range 2 {
		calls.take()
		var page keyListView
		testkit.MustJSON(t, s.call("GET", "/v1/keys?limit=1&page_token="+token, admin, ""), 200, &page)
		if len(page.Keys) != 1 || page.Keys[0].ID != keys[i].ID || page.NextPageToken == "" {
			t.Fatalf("page %d = %+v, want key %s and a next_page_token", i+1, page, keys[i].ID)
		}
		if got := calls.take(); !slices.Equal(got, []int{1}) {
			t.Errorf("page %d of 1 key: ListByOwner calls of limits %v, want one of limit 1", i+1, got)
		}
		token = page.NextPageToken
	}
}

// TestKeysListPageTokenOutOfRange: a well-formed page token whose time
// Firestore cannot keep (a crafted one: micros 9223372036854775807) is a
// 400 invalid_page_token, with no store call and no ERROR logged, not the
// 503 store_unavailable Firestore's refusal made; the first and last times
// Firestore keeps are pages, 200 on the emulator.
func TestKeysListPageTokenOutOfRange(t *testing.T) {
	calls := &listCalls{Store: testkit.EmulatorStore(t)}
	s := newServer(t, calls, func(c *Config) { c.StoreTimeout = emulatorConfig().StoreTimeout })
	admin, _ := s.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys} })
	id := strings.Repeat("ab", 32)
	token := func(micros int64) string {
		return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(micros, 10) + "." + id))
	}
	for _, c := range []struct {
		name   string
		micros int64
		status int
	}{
		{"max int64", math.MaxInt64, 400},
		{"min int64", math.MinInt64, 400},
		{"year 10000", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), 400},
		{"before year 1", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro() - 1, 400},
		{"the last time Firestore keeps", time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro(), 200},
		{"the first", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls.take()
			w := s.call("GET", "/v1/keys?page_token="+token(c.micros), admin, "")
			if c.status == 200 {
				if w.Code != 200 {
					t.Fatalf("status %d, want 200: %s", w.Code, w.Body)
				}
				return
			}
			testkit.WantProblem(t, w, 400, "invalid_page_token")
			if got := calls.take(); len(got) != 0 {
				t.Errorf("ListByOwner called %v", got)
			}
		})
	}
	if logs := s.logs.String(); strings.Contains(logs, `"ERROR"`) {
		t.Errorf("an ERROR logged:\n%s", logs)
	}
}
