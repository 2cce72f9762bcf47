package apikey

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testkit"
)

// TestLeakedKeyCannotLockItsOwnerOut is issue 21's lockout: an owner at its
// monthly quota, with its rate limit flooded by a leaked key of its own,
// still manages its keys. The admin key lists keys, reads usage and revokes
// the leaked key, within a second, and the leaked key is refused from then
// on. On every store, with the per-instance limits and with the global ones
// on Redis.
func TestLeakedKeyCannotLockItsOwnerOut(t *testing.T) {
	testkit.ForEachStore(t, func(t *testing.T, s store.Store) {
		for _, limits := range []string{"per instance", "on Redis"} {
			t.Run(limits, func(t *testing.T) {
				var change []func(*Config)
				if limits == "on Redis" {
					change = append(change, onRedis(redistest.Start(t), time.Second))
				}
				srv := newRealServer(t, s, change...)
				owner := fmt.Sprintf("lockout-%d", time.Now().UnixNano())
				if err := s.SetPlan(t.Context(), store.Plan{Owner: owner, MonthlyQuota: 50, RateLimit: 5, Burst: 5}); err != nil {
					t.Fatal(err)
				}
				leaked, lk := srv.mint(t, owner, func(k *store.Key) { k.CreatedAt = time.Now() })
				admin, _ := srv.mint(t, owner, func(k *store.Key) {
					k.CreatedAt, k.Scopes = time.Now(), []string{scopeKeys, scopeUsage, scopeThings}
				})

				// The leaked key floods: 8 clients until the quota and the
				// rate limit refuse it.
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var ok, refused atomic.Int64
				for range 8 {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							switch srv.do("GET", "/", "", leaked).Code {
							case http.StatusOK:
								ok.Add(1)
							case http.StatusTooManyRequests:
								refused.Add(1)
							}
						}
					})
				}
				defer func() { close(stop); wg.Wait() }()
				testkit.WaitFor(t, "the leaked key refused by the owner's limits", func() bool { return refused.Load() >= 100 })

				for _, path := range []string{"/v1/keys?limit=1", "/v1/usage"} {
					for range 10 { // as the console polls
						if w := srv.do("GET", path, "", admin); w.Code != http.StatusOK {
							t.Fatalf("GET %s with the admin key during the flood = %d %s", path, w.Code, w.Body)
						}
					}
				}
				start := time.Now()
				w := srv.do("DELETE", "/v1/keys/"+lk.ID, "", admin)
				// A starved DELETE would wait until the flood stops, which
				// it does not before the DELETE returns: 5 s leaves a loaded
				// machine room.
				if took := time.Since(start); w.Code != http.StatusNoContent || took > 5*time.Second {
					t.Fatalf("DELETE the leaked key during the flood = %d %s after %v; want 204 within 5 s", w.Code, w.Body, took)
				}
				if w := srv.do("GET", "/", "", leaked); w.Code != http.StatusUnauthorized {
					t.Errorf("the revoked leaked key = %d, want 401", w.Code)
				}
				if n := ok.Load(); n > 50 {
					t.Errorf("the leaked key was admitted %d times on a quota of 50", n)
				}
			})
		}
	})
}

// TestManagementLimit: the management endpoints have a limit of their own
// per key, which a flood of them reaches (429, limit "management"), and
// which leaves the data plane and other keys' management alone.
func TestManagementLimit(t *testing.T) {
	srv := newServer(t, nil)
	a, _ := srv.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys} })
	b, _ := srv.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys} })
	for i := range manageBurst {
		if w := srv.do("GET", "/v1/keys?limit=1", "", a); w.Code != http.StatusOK {
			t.Fatalf("management request %d = %d %s", i, w.Code, w.Body)
		}
	}
	w := srv.do("GET", "/v1/keys?limit=1", "", a)
	p := testkit.WantProblem(t, w, http.StatusTooManyRequests, "rate_limited")
	if p.Limit != "management" || !strings.Contains(p.Detail, "management") || w.Header().Get("Retry-After") == "" {
		t.Errorf("over the management limit: %+v, headers %v", p, w.Header())
	}
	if w := srv.do("GET", "/v1/keys?limit=1", "", b); w.Code != http.StatusOK {
		t.Errorf("another key's management = %d, want 200", w.Code)
	}
	srv.clock.Advance(time.Second)
	if w := srv.do("GET", "/v1/keys?limit=1", "", a); w.Code != http.StatusOK {
		t.Errorf("a second later = %d, want 200 (%d requests a second)", w.Code, manageRate)
	}
}
