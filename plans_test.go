package keygate

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPlanContract runs the same plan and key-cap checks on every store.
func TestPlanContract(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			for _, c := range planContract {
				t.Run(c.name, func(t *testing.T) { c.run(t, impl.new(t)) })
			}
		})
	}
}

var planContract = []struct {
	name string
	run  func(t *testing.T, s store)
}{
	{"set then get returns the plan; set replaces it", func(t *testing.T, s store) {
		ctx := context.Background()
		want := store.Plan{Owner: "acme", RateLimit: 2.5, Burst: 10, MonthlyQuota: 1000, MaxKeys: 7,
			UpdatedAt: t0.Add(123456789 * time.Nanosecond)}
		if err := s.SetPlan(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetPlan(ctx, "acme")
		want.UpdatedAt = store.StoredTime(want.UpdatedAt)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetPlan = %+v, %v\nwant %+v", got, err, want)
		}
		// The whole plan is replaced: fields left zero are zero again.
		if err := s.SetPlan(ctx, store.Plan{Owner: "acme", MaxKeys: 3, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		got, err = s.GetPlan(ctx, "acme")
		if want := (store.Plan{Owner: "acme", MaxKeys: 3, UpdatedAt: t0}); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetPlan after replacing = %+v, %v\nwant %+v", got, err, want)
		}
		if _, err := s.GetPlan(ctx, "other"); !errors.Is(err, store.ErrPlanNotFound) {
			t.Errorf("GetPlan(other) = %v, want ErrPlanNotFound", err)
		}
	}},
	{"a zero updated_at is the time of the call", func(t *testing.T, s store) {
		before := time.Now().Add(-time.Minute)
		if err := s.SetPlan(context.Background(), store.Plan{Owner: "acme", MaxKeys: 1}); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetPlan(context.Background(), "acme")
		if err != nil || got.UpdatedAt.Before(before) || got.UpdatedAt.Location() != time.UTC {
			t.Errorf("GetPlan = %+v, %v; want updated_at now, in UTC", got, err)
		}
	}},
	{"delete removes the plan", func(t *testing.T, s store) {
		ctx := context.Background()
		if err := s.SetPlan(ctx, store.Plan{Owner: "acme", MaxKeys: 3}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePlan(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetPlan(ctx, "acme"); !errors.Is(err, store.ErrPlanNotFound) {
			t.Errorf("GetPlan after DeletePlan = %v", err)
		}
		if err := s.DeletePlan(ctx, "acme"); !errors.Is(err, store.ErrPlanNotFound) {
			t.Errorf("second DeletePlan = %v, want ErrPlanNotFound", err)
		}
	}},
	{"set refuses a plan out of bounds", func(t *testing.T, s store) {
		ctx := context.Background()
		for _, p := range []store.Plan{
			{Owner: "acme", RateLimit: -1},
			{Owner: "acme", Burst: store.MaxBurst + 1},
			{Owner: "acme", MonthlyQuota: -1},
			{Owner: "acme", MaxKeys: store.MaxPlanKeys + 1},
			{Owner: "acme", MaxKeys: -1},
			{Owner: "a/b"},
			{Owner: ""},
		} {
			if err := s.SetPlan(ctx, p); err == nil {
				t.Errorf("SetPlan(%+v) succeeded", p)
			}
		}
		if _, err := s.GetPlan(ctx, "acme"); !errors.Is(err, store.ErrPlanNotFound) {
			t.Errorf("a refused plan was stored: %v", err)
		}
	}},
	{"owners that are no document ID are store.ErrInvalidOwner, not a panic", func(t *testing.T, s store) {
		ctx := context.Background()
		for _, owner := range []string{"a/b", ".", "..", "__x__", ""} {
			if _, err := s.GetPlan(ctx, owner); !errors.Is(err, store.ErrInvalidOwner) {
				t.Errorf("GetPlan(%q) = %v, want ErrInvalidOwner", owner, err)
			}
			if err := s.DeletePlan(ctx, owner); !errors.Is(err, store.ErrInvalidOwner) {
				t.Errorf("DeletePlan(%q) = %v, want ErrInvalidOwner", owner, err)
			}
			_, k, _ := store.Mint("kg", store.Key{Owner: owner, CreatedAt: t0})
			if err := s.CreateCapped(ctx, k, 10, t0); !errors.Is(err, store.ErrInvalidOwner) {
				t.Errorf("CreateCapped(owner %q) = %v, want ErrInvalidOwner", owner, err)
			}
		}
	}},
	{"the cap refuses the key past it, and creates nothing", func(t *testing.T, s store) {
		ctx := context.Background()
		for range 3 {
			capped(t, s, "acme", 3, nil)
		}
		mintTestKey(t, s, "other") // another owner's key does not count
		_, k, _ := store.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
		if err := s.CreateCapped(ctx, k, 3, t0); !errors.Is(err, store.ErrKeyLimitReached) {
			t.Fatalf("4th CreateCapped = %v, want ErrKeyLimitReached", err)
		}
		if _, err := s.Get(ctx, k.ID); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("the refused key was stored: %v", err)
		}
		// A higher cap lets it in.
		if err := s.CreateCapped(ctx, k, 4, t0); err != nil {
			t.Errorf("CreateCapped with cap 4 = %v", err)
		}
	}},
	{"revoked and expired keys do not count", func(t *testing.T, s store) {
		ctx := context.Background()
		first := capped(t, s, "acme", 3, nil)
		capped(t, s, "acme", 3, func(k *store.Key) { k.ExpiresAt = t0.Add(time.Hour) })
		capped(t, s, "acme", 3, nil)
		mintTestKey(t, s, "acme", func(k *store.Key) { k.RevokedAt = t0.Add(-time.Minute) })
		mintTestKey(t, s, "acme", func(k *store.Key) { k.ExpiresAt = t0 })
		_, k, _ := store.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
		if err := s.CreateCapped(ctx, k, 3, t0); !errors.Is(err, store.ErrKeyLimitReached) {
			t.Fatalf("CreateCapped at the cap = %v, want ErrKeyLimitReached", err)
		}
		if _, err := s.Revoke(ctx, first.ID, t0); err != nil {
			t.Fatal(err)
		}
		capped(t, s, "acme", 3, nil) // the revocation freed a slot
		// An hour on, the key that expired then frees another.
		_, k, _ = store.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
		if err := s.CreateCapped(ctx, k, 3, t0); !errors.Is(err, store.ErrKeyLimitReached) {
			t.Fatalf("CreateCapped at the cap again = %v, want ErrKeyLimitReached", err)
		}
		if err := s.CreateCapped(ctx, k, 3, t0.Add(time.Hour)); err != nil {
			t.Errorf("CreateCapped once a key expired = %v", err)
		}
	}},
	{"capped create of a taken ID is ErrKeyExists", func(t *testing.T, s store) {
		k := capped(t, s, "acme", 3, nil)
		if err := s.CreateCapped(context.Background(), k, 3, t0); !errors.Is(err, store.ErrKeyExists) {
			t.Errorf("CreateCapped of a stored key = %v, want ErrKeyExists", err)
		}
	}},
	{"concurrent capped creates never pass the cap", func(t *testing.T, s store) {
		const n, limit = 20, 5
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, k, err := store.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
				if err == nil {
					err = s.CreateCapped(context.Background(), k, limit, t0)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		ok, refused := 0, 0
		var other []string
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrKeyLimitReached):
				refused++
			default:
				other = append(other, err.Error())
			}
		}
		if ok != limit || refused != n-limit {
			t.Errorf("%d created, %d refused, other errors %q; want %d and %d", ok, refused, other, limit, n-limit)
		}
		page, err := s.ListByOwner(context.Background(), "acme", nil, store.MaxPageLimit)
		keys := page.Keys
		if err != nil || len(keys) != limit {
			t.Errorf("ListByOwner = %d keys, %v; want %d", len(keys), err, limit)
		}
	}},
	{"rotation is not capped", func(t *testing.T, s store) {
		ctx := context.Background()
		k := capped(t, s, "acme", 1, nil)
		_, repl, _ := store.Mint("kg", k.Replacement(t0))
		if _, err := s.Rotate(ctx, k.ID, repl, t0.Add(time.Hour)); err != nil {
			t.Errorf("Rotate at the cap = %v", err)
		}
	}},
}

// capped creates a key for owner under the cap limit at t0, changed by
// change, and fails the test if that is refused.
func capped(t *testing.T, s store.KeyStore, owner string, limit int, change func(*store.Key)) store.Key {
	t.Helper()
	tmpl := store.Key{Owner: owner, Name: fmt.Sprint(owner, "-capped"), CreatedAt: t0}
	if change != nil {
		change(&tmpl)
	}
	_, k, err := store.Mint("kg", tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCapped(context.Background(), k, limit, t0); err != nil {
		t.Fatalf("CreateCapped under the cap: %v", err)
	}
	return store.Stored(k)
}

func TestEffectivePlan(t *testing.T) {
	cfg := testConfig(func(c *Config) {
		c.DefaultRateLimit, c.DefaultBurst, c.DefaultMonthlyQuota, c.DefaultMaxKeys = 2, 5, 1000, 10
	})
	none := testConfig(func(c *Config) { c.DefaultMaxKeys = 0 })
	for _, c := range []struct {
		name  string
		cfg   Config
		p     store.Plan
		found bool
		want  store.Plan
	}{
		{"no plan: the defaults", cfg, store.Plan{Owner: "a", MaxKeys: 99}, false,
			store.Plan{Owner: "a", RateLimit: 2, Burst: 5, MonthlyQuota: 1000, MaxKeys: 10}},
		{"a whole plan", cfg, store.Plan{Owner: "a", RateLimit: 50, Burst: 80, MonthlyQuota: 7, MaxKeys: 3}, true,
			store.Plan{Owner: "a", RateLimit: 50, Burst: 80, MonthlyQuota: 7, MaxKeys: 3}},
		{"a plan's rate without burst: one second's worth", cfg, store.Plan{Owner: "a", RateLimit: 50.5}, true,
			store.Plan{Owner: "a", RateLimit: 50.5, Burst: 51, MonthlyQuota: 1000, MaxKeys: 10}},
		{"a plan's burst with the default rate", cfg, store.Plan{Owner: "a", Burst: 9}, true,
			store.Plan{Owner: "a", RateLimit: 2, Burst: 9, MonthlyQuota: 1000, MaxKeys: 10}},
		{"no default rate: no rate, no burst", none, store.Plan{Owner: "a", Burst: 9}, true,
			store.Plan{Owner: "a", MaxKeys: store.DefaultMaxKeys}},
		{"default rate without DEFAULT_BURST", testConfig(func(c *Config) { c.DefaultRateLimit = 3.2 }), store.Plan{Owner: "a"}, true,
			store.Plan{Owner: "a", RateLimit: 3.2, Burst: 4, MaxKeys: store.DefaultMaxKeys}},
	} {
		if got := c.cfg.EffectivePlan(c.p, c.found); got != c.want {
			t.Errorf("%s: EffectivePlan = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestValidateOwnerIsADocumentID(t *testing.T) {
	for _, c := range []struct {
		owner string
		want  string // "" for valid
	}{
		{"acme", ""},
		{"a.b", ""},
		{"...", ""},
		{"__", ""},
		{"___", ""},
		{"__acme", ""},
		{"acme__", ""},
		{strings.Repeat("界", store.MaxOwnerLen), ""},
		{"a/b", "contains '/'"},
		{"/", "contains '/'"},
		{".", "want a name other than"},
		{"..", "want a name other than"},
		{"____", "Firestore reserves"},
		{"__acme__", "Firestore reserves"},
	} {
		err := store.ValidateOwner(c.owner)
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateOwner(%q) = %v, want %q", c.owner, err, c.want)
		}
	}
}

func TestValidatePlan(t *testing.T) {
	if err := store.ValidatePlan(store.Plan{Owner: "a", RateLimit: 1, Burst: 1, MonthlyQuota: 1, MaxKeys: store.MaxPlanKeys}); err != nil {
		t.Errorf("ValidatePlan(a valid plan) = %v", err)
	}
	err := store.ValidatePlan(store.Plan{Owner: "a", MaxKeys: store.MaxPlanKeys + 1})
	if le, ok := errors.AsType[*store.LimitError](err); !ok || le.Field != "max-keys" {
		t.Errorf("ValidatePlan(max keys too high) = %v, want a max-keys LimitError", err)
	}
}

// TestFirestoreCapAcrossClients checks the cap when the concurrent creates
// come from separate Firestore clients, as from separate instances: the
// transaction alone, without the in-process lock, keeps them under it.
func TestFirestoreCapAcrossClients(t *testing.T) {
	cfg := emulatorConfig(t)
	const clients, limit = 3, 2
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for i := range clients {
		s := firestorestore.New(cfg)
		t.Cleanup(func() { s.Close() })
		wg.Go(func() {
			_, k, err := store.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
			if err == nil {
				err = s.CreateCapped(context.Background(), k, limit, t0)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrKeyLimitReached):
			t.Errorf("CreateCapped = %v", err)
		}
	}
	if ok != limit {
		t.Errorf("%d created, want %d", ok, limit)
	}
	s := newEmulatorStore(t, func(c *Config) { *c = cfg })
	if page, err := s.ListByOwner(context.Background(), "acme", nil, store.MaxPageLimit); err != nil || len(page.Keys) != limit {
		t.Errorf("ListByOwner = %d keys, %v; want %d", len(page.Keys), err, limit)
	}
}
