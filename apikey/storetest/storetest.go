// Package storetest checks that a store.Store keeps the promises of the
// store package: the contracts of KeyStore, KeyReader, UsageStore, PlanStore,
// OwnerReader, ChangeStore, LeakStore and EventStore, which the Gate relies on. keygate's own stores, memstore
// and firestorestore, run it; a store of your own should too.
//
// Run runs every group of checks; Keys, CappedCreate, Usage, Plans, Readers,
// Changes, Leaks, Provenance and Contexts run one group each. Every check is a subtest of its own and
// gets a store of its own from newStore, which must return an empty store
// (or one where the owners and keys the checks make up do not exist) and
// may register its cleanup with t.Cleanup. The checks use only the store's
// methods, mint keys with keyrules.Mint, and run one after another.
//
// A third-party store runs the contract from its tests:
//
//	package mystore_test
//
//	import (
//		"testing"
//
//		"github.com/keygate/keygate/apikey/store"
//		"github.com/keygate/keygate/apikey/storetest"
//		"example.com/mystore"
//	)
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := mystore.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// A store that the Gate uses behind store.WithTimeout can be checked
// wrapped the same way: the wrapper must pass too.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

// NewStore returns an empty store for one check (see the package doc).
type NewStore = func(t *testing.T) store.Store

// Run runs every group of the contract on stores from newStore, each group
// as a subtest named after it.
func Run(t *testing.T, newStore NewStore) {
	t.Helper()
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, newStore) })
	}
}

// groups are the contract's groups, in the order Run runs them.
var groups = []struct {
	name string
	run  func(*testing.T, NewStore)
}{
	{"Keys", Keys},
	{"CappedCreate", CappedCreate},
	{"CappedRotate", CappedRotate},
	{"Usage", Usage},
	{"Plans", Plans},
	{"Readers", Readers},
	{"Changes", Changes},
	{"Leaks", Leaks},
	{"Events", Events},
	{"Billing", Billing},
	{"Provenance", Provenance},
	{"Contexts", Contexts},
}

// Keys checks KeyStore's Create, Get, ListByOwner (paging in
// keyrules.ListOrder), Revoke, Delete and Rotate.
func Keys(t *testing.T, newStore NewStore) { runCases(t, newStore, keyCases) }

// CappedCreate checks KeyStore.CreateCapped: the cap on active keys, also
// under concurrent creates, and that Rotate is not capped (RotateCapped is:
// see CappedRotate).
func CappedCreate(t *testing.T, newStore NewStore) { runCases(t, newStore, cappedCases) }

// Usage checks UsageStore: AddUsage applied at most once per instance and
// batch number (and AppliedSeq, when the store is a store.AppliedReader), all or nothing, a full
// batch of store.MaxUsageBatch counts, and the key and owner totals.
func Usage(t *testing.T, newStore NewStore) { runCases(t, newStore, usageCases) }

// Plans checks PlanStore: GetPlan, SetPlan (with keyrules.ValidatePlan) and
// DeletePlan, and ErrInvalidOwner for owners that cannot name a plan.
func Plans(t *testing.T, newStore NewStore) { runCases(t, newStore, planCases) }

// Readers checks that KeyReader.ReadKey and OwnerReader.ReadOwner answer
// what the separate reads answer.
func Readers(t *testing.T, newStore NewStore) { runCases(t, newStore, readerCases) }

// Contexts checks that every method honours its context: called with a
// cancelled context or a passed deadline, it returns an error, not an
// answer such as ErrKeyNotFound, and promptly.
func Contexts(t *testing.T, newStore NewStore) { runCases(t, newStore, contextCases) }

// contractCase is one check of the contract, on a store of its own.
type contractCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

func runCases(t *testing.T, newStore NewStore, cases []contractCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newStore(t)) })
	}
}

// T0 is the time the checks' keys are created at: a fixed time, whole to
// the microsecond, in UTC.
var T0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// MintKey mints and stores a key for owner with prefix "kg", created at T0,
// changed by change; it returns the key and the key as every store must
// give it back.
func MintKey(t testing.TB, s store.KeyStore, owner string, change ...func(*store.Key)) (string, store.Key) {
	t.Helper()
	tmpl := store.Key{Owner: owner, Name: owner + "-key", CreatedAt: T0}
	for _, f := range change {
		f(&tmpl)
	}
	key, k, err := keyrules.Mint("kg", tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return key, store.Stored(k)
}

// unstored mints a key for owner at T0 without storing it.
func unstored(t testing.TB, owner string) store.Key {
	t.Helper()
	_, k, err := keyrules.Mint("kg", store.Key{Owner: owner, CreatedAt: T0})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyIDs are the keys' IDs.
func keyIDs(keys []store.Key) []string {
	ids := []string{}
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}

var keyCases = []contractCase{
	{"create then get returns the same key", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, want := MintKey(t, s, "acme", func(k *store.Key) {
			k.Scopes = []string{"bingo:check", "keys:manage"}
			k.CreatedAt = T0.Add(123456789 * time.Nanosecond)
			k.ExpiresAt = T0.Add(time.Hour)
			k.RateLimit, k.Burst, k.MonthlyQuota = 2.5, 7, 1000
		})
		got, err := s.Get(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Get = %+v\nwant  %+v", got, want)
		}
		if got.CreatedAt.Nanosecond()%1000 != 0 || got.CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt = %v, want UTC to the microsecond", got.CreatedAt)
		}
	}},
	{"absent scopes and expiry read back empty", func(t *testing.T, s store.Store) {
		_, want := MintKey(t, s, "acme")
		got, err := s.Get(context.Background(), want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Scopes == nil || len(got.Scopes) != 0 || !got.ExpiresAt.IsZero() || !got.RevokedAt.IsZero() {
			t.Errorf("Get = %+v, want empty scopes, no expiry, not revoked", got)
		}
	}},
	{"the store keeps and hands out copies", func(t *testing.T, s store.Store) {
		// Callers own what they pass and get: a cache that edits a key's
		// scopes must not edit the stored key, nor another caller's.
		ctx := context.Background()
		scopes := []string{"a:read", "b:read"}
		_, k, err := keyrules.Mint("kg", store.Key{Owner: "acme", Scopes: scopes, CreatedAt: T0})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, k); err != nil {
			t.Fatal(err)
		}
		scopes[0] = "changed:by-creator"
		got, err := s.Get(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		got.Scopes[1] = "changed:by-reader"
		page, err := s.ListByOwner(ctx, "acme", nil, 1)
		if err != nil || len(page.Keys) != 1 {
			t.Fatalf("ListByOwner = %+v, %v", page, err)
		}
		page.Keys[0].Scopes[0] = "changed:by-lister"
		again, err := s.Get(ctx, k.ID)
		if err != nil || !slices.Equal(again.Scopes, []string{"a:read", "b:read"}) {
			t.Errorf("stored scopes = %q, %v; want them as created, whatever callers did to their copies", again.Scopes, err)
		}
	}},
	{"get unknown is ErrKeyNotFound", func(t *testing.T, s store.Store) {
		if _, err := s.Get(context.Background(), keyformat.ID("nope")); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("Get = %v, want ErrKeyNotFound", err)
		}
	}},
	{"create twice is ErrKeyExists", func(t *testing.T, s store.Store) {
		_, k := MintKey(t, s, "acme")
		if err := s.Create(context.Background(), k); !errors.Is(err, store.ErrKeyExists) {
			t.Errorf("second Create = %v, want ErrKeyExists", err)
		}
	}},
	{"list by owner is newest first and isolated", func(t *testing.T, s store.Store) {
		var ids []string
		for i := range 3 {
			_, k := MintKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = T0.Add(time.Duration(i) * time.Minute) })
			ids = append([]string{k.ID}, ids...)
		}
		MintKey(t, s, "other")
		page, err := s.ListByOwner(context.Background(), "acme", nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := keyIDs(page.Keys); !reflect.DeepEqual(got, ids) || page.Next != nil {
			t.Errorf("ListByOwner = %v, next %v; want %v, no next", got, page.Next, ids)
		}
	}},
	{"list of an owner without keys is an empty last page", func(t *testing.T, s store.Store) {
		MintKey(t, s, "acme")
		for _, after := range []*store.PagePosition{nil, {CreatedAt: T0.Add(time.Hour), ID: keyformat.ID("x")}} {
			page, err := s.ListByOwner(context.Background(), "nobody", after, 1)
			if err != nil || page.Keys == nil || len(page.Keys) != 0 || page.Next != nil {
				t.Errorf("ListByOwner(nobody, after %v) = %+v, %v; want an empty non-nil page, no next", after, page, err)
			}
		}
	}},
	{"list orders ties on creation time by ID, descending", func(t *testing.T, s store.Store) {
		var keys []store.Key
		// Three keys share a time and two another, a microsecond apart:
		// Firestore's precision.
		for _, us := range []int{0, 0, 0, 1, 1, 2, -1} {
			_, k := MintKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = T0.Add(time.Duration(us) * time.Microsecond) })
			keys = append(keys, k)
		}
		want := slices.Clone(keys)
		slices.SortFunc(want, func(a, b store.Key) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(b.ID, a.ID)
		})
		page, err := s.ListByOwner(context.Background(), "acme", nil, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := keyIDs(page.Keys); !slices.Equal(got, keyIDs(want)) {
			t.Errorf("ListByOwner = %v\nwant (newest first, ties by ID descending) %v", got, keyIDs(want))
		}
		if !reflect.DeepEqual(page.Keys, want) {
			t.Errorf("listed keys differ from the stored ones:\n%+v\nwant %+v", page.Keys, want)
		}
	}},
	{"list pages continue where the last ended, without gaps or repeats", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for i := range 11 { // in pairs of equal times, so pages end inside ties
			MintKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = T0.Add(time.Duration(i/2) * time.Second) })
		}
		MintKey(t, s, "other", func(k *store.Key) { k.CreatedAt = T0.Add(3 * time.Second) })
		all, err := s.ListByOwner(ctx, "acme", nil, 100)
		if err != nil || len(all.Keys) != 11 {
			t.Fatalf("ListByOwner = %d keys, %v", len(all.Keys), err)
		}
		for _, limit := range []int{1, 2, 3, 4, 10, 11} {
			var got []string
			var after *store.PagePosition
			for pages := 1; ; pages++ {
				page, err := s.ListByOwner(ctx, "acme", after, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Keys) > limit || len(page.Keys) == 0 {
					t.Fatalf("limit %d: page %d has %d keys", limit, pages, len(page.Keys))
				}
				got = append(got, keyIDs(page.Keys)...)
				if page.Next == nil {
					if want := (11 + limit - 1) / limit; pages != want {
						t.Errorf("limit %d: %d pages, want %d", limit, pages, want)
					}
					break
				}
				if last := page.Keys[len(page.Keys)-1]; *page.Next != keyrules.PositionOf(last) {
					t.Errorf("limit %d: next %v, want the last key's position %v", limit, *page.Next, keyrules.PositionOf(last))
				}
				after = page.Next
			}
			if !slices.Equal(got, keyIDs(all.Keys)) {
				t.Errorf("limit %d: pages %v\nwant the whole list %v", limit, got, keyIDs(all.Keys))
			}
		}
	}},
	{"list tells a next page only when a key follows", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for i := range 3 {
			MintKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = T0.Add(time.Duration(i) * time.Second) })
		}
		for limit, wantNext := range map[int]bool{1: true, 2: true, 3: false, 4: false} {
			page, err := s.ListByOwner(ctx, "acme", nil, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Keys) != min(limit, 3) || (page.Next != nil) != wantNext {
				t.Errorf("limit %d of 3: %d keys, next %v; want %d keys, next %v", limit, len(page.Keys), page.Next, min(limit, 3), wantNext)
			}
		}
		// Exactly a limit's worth after a position: the last page.
		first, err := s.ListByOwner(ctx, "acme", nil, 1)
		if err != nil || first.Next == nil {
			t.Fatalf("first page of 1 = %+v, %v", first, err)
		}
		rest, err := s.ListByOwner(ctx, "acme", first.Next, 2)
		if err != nil || len(rest.Keys) != 2 || rest.Next != nil {
			t.Errorf("the last 2 of 3 = %d keys, next %v, %v; want 2, no next", len(rest.Keys), rest.Next, err)
		}
	}},
	{"a position holds when its key is gone", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		var ids []string
		for i := range 4 {
			_, k := MintKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = T0.Add(time.Duration(-i) * time.Second) })
			ids = append(ids, k.ID)
		}
		first, err := s.ListByOwner(ctx, "acme", nil, 2)
		if err != nil || first.Next == nil {
			t.Fatalf("first page = %+v, %v", first, err)
		}
		if err := s.Delete(ctx, ids[1]); err != nil { // the first page's last key
			t.Fatal(err)
		}
		rest, err := s.ListByOwner(ctx, "acme", first.Next, 10)
		if got := keyIDs(rest.Keys); err != nil || !slices.Equal(got, ids[2:]) {
			t.Errorf("after a deleted key = %v, %v; want %v", got, err, ids[2:])
		}
	}},
	{"list refuses a limit below 1 or above MaxPageLimit", func(t *testing.T, s store.Store) {
		for _, limit := range []int{0, -1, store.MaxPageLimit + 1} {
			if _, err := s.ListByOwner(context.Background(), "acme", nil, limit); err == nil {
				t.Errorf("ListByOwner(limit %d) succeeded", limit)
			}
		}
	}},
	{"revoke sets revoked_at once", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, k := MintKey(t, s, "acme")
		at := T0.Add(time.Hour)
		got, err := s.Revoke(ctx, k.ID, at)
		if err != nil || !got.RevokedAt.Equal(at) {
			t.Fatalf("Revoke = %v, %v", got.RevokedAt, err)
		}
		again, err := s.Revoke(ctx, k.ID, at.Add(time.Hour))
		if err != nil || !again.RevokedAt.Equal(at) {
			t.Errorf("second Revoke = %v, %v; want the first time kept", again.RevokedAt, err)
		}
		stored, err := s.Get(ctx, k.ID)
		if err != nil || !stored.RevokedAt.Equal(at) || stored.Status(at) != store.StatusRevoked {
			t.Errorf("stored RevokedAt = %v, %v", stored.RevokedAt, err)
		}
		if _, err := s.Revoke(ctx, keyformat.ID("nope"), at); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("Revoke(unknown) = %v, want ErrKeyNotFound", err)
		}
	}},
	{"delete removes the key", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, k := MintKey(t, s, "acme")
		if err := s.Delete(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, k.ID); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("Get after Delete = %v", err)
		}
		if err := s.Delete(ctx, k.ID); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("second Delete = %v, want ErrKeyNotFound", err)
		}
	}},
	{"rotate stores the replacement and shortens the old expiry", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, old := MintKey(t, s, "acme")
		longLived := func(k *store.Key) { k.ExpiresAt = T0.Add(time.Hour) }
		_, longer := MintKey(t, s, "acme", longLived)
		_, shorter := MintKey(t, s, "acme", longLived)
		for _, c := range []struct {
			old       store.Key
			graceEnd  time.Time
			wantUntil time.Time
		}{
			{old, T0.Add(24 * time.Hour), T0.Add(24 * time.Hour)},         // no expiry: now + grace
			{longer, T0.Add(48 * time.Hour), T0.Add(time.Hour)},           // never later than its own
			{shorter, T0.Add(30 * time.Minute), T0.Add(30 * time.Minute)}, // or earlier
		} {
			repl := unstored(t, "acme")
			got, err := s.Rotate(ctx, c.old.ID, repl, c.graceEnd)
			if err != nil {
				t.Fatal(err)
			}
			if !got.ExpiresAt.Equal(c.wantUntil) || got.ReplacedBy != repl.ID {
				t.Errorf("old expiry = %v, replaced by %q; want %v, %s", got.ExpiresAt, got.ReplacedBy, c.wantUntil, repl.ID)
			}
			if stored, err := s.Get(ctx, c.old.ID); err != nil || !stored.ExpiresAt.Equal(c.wantUntil) || stored.ReplacedBy != repl.ID {
				t.Errorf("stored old expiry = %v, replaced by %q, %v; want %v, %s", stored.ExpiresAt, stored.ReplacedBy, err, c.wantUntil, repl.ID)
			}
			if got, err := s.Get(ctx, repl.ID); err != nil || !reflect.DeepEqual(got, store.Stored(repl)) {
				t.Errorf("replacement = %+v, %v; want %+v", got, err, store.Stored(repl))
			}
		}
	}},
	{"rotate refuses an inactive or unknown key and stores nothing", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, revoked := MintKey(t, s, "acme", func(k *store.Key) { k.RevokedAt = T0.Add(-time.Minute) })
		_, expired := MintKey(t, s, "acme", func(k *store.Key) { k.ExpiresAt = T0 })
		for _, c := range []struct {
			id   string
			want error
		}{{revoked.ID, store.ErrKeyInactive}, {expired.ID, store.ErrKeyInactive}, {keyformat.ID("nope"), store.ErrKeyNotFound}} {
			repl := unstored(t, "acme")
			if _, err := s.Rotate(ctx, c.id, repl, T0.Add(time.Hour)); !errors.Is(err, c.want) {
				t.Errorf("Rotate = %v, want %v", err, c.want)
			}
			if _, err := s.Get(ctx, repl.ID); !errors.Is(err, store.ErrKeyNotFound) {
				t.Errorf("the refused rotation stored its replacement: %v", err)
			}
		}
	}},
	{"rotate to a taken ID fails as a whole", func(t *testing.T, s store.Store) {
		// Rotate is one transaction: when the replacement cannot be stored,
		// the old key keeps its expiry.
		ctx := context.Background()
		_, old := MintKey(t, s, "acme")
		_, taken := MintKey(t, s, "acme", func(k *store.Key) { k.Name = "taken" })
		repl := keyrules.Replacement(old, T0)
		repl.ID, repl.Hint = taken.ID, taken.Hint
		if _, err := s.Rotate(ctx, old.ID, repl, T0.Add(time.Hour)); err == nil {
			t.Fatal("Rotate onto a stored key's ID succeeded")
		}
		if got, err := s.Get(ctx, old.ID); err != nil || !reflect.DeepEqual(got, old) {
			t.Errorf("old key after the failed rotation = %+v, %v; want it unchanged %+v", got, err, old)
		}
		if got, err := s.Get(ctx, taken.ID); err != nil || !reflect.DeepEqual(got, taken) {
			t.Errorf("the taken key after the failed rotation = %+v, %v; want it unchanged %+v", got, err, taken)
		}
	}},
}

var cappedCases = []contractCase{
	{"the cap refuses the key past it, and creates nothing", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for range 3 {
			capped(t, s, "acme", 3, nil)
		}
		MintKey(t, s, "other") // another owner's key does not count
		k := unstored(t, "acme")
		if err := s.CreateCapped(ctx, k, 3, T0); !errors.Is(err, store.ErrKeyLimitReached) {
			t.Fatalf("4th CreateCapped = %v, want ErrKeyLimitReached", err)
		}
		if _, err := s.Get(ctx, k.ID); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("the refused key was stored: %v", err)
		}
		// A higher cap lets it in.
		if err := s.CreateCapped(ctx, k, 4, T0); err != nil {
			t.Errorf("CreateCapped with cap 4 = %v", err)
		}
		if got, err := s.Get(ctx, k.ID); err != nil || !reflect.DeepEqual(got, store.Stored(k)) {
			t.Errorf("Get of the capped key = %+v, %v; want %+v", got, err, store.Stored(k))
		}
	}},
	{"revoked and expired keys do not count", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		first := capped(t, s, "acme", 3, nil)
		capped(t, s, "acme", 3, func(k *store.Key) { k.ExpiresAt = T0.Add(time.Hour) })
		capped(t, s, "acme", 3, nil)
		MintKey(t, s, "acme", func(k *store.Key) { k.RevokedAt = T0.Add(-time.Minute) })
		MintKey(t, s, "acme", func(k *store.Key) { k.ExpiresAt = T0 })
		k := unstored(t, "acme")
		if err := s.CreateCapped(ctx, k, 3, T0); !errors.Is(err, store.ErrKeyLimitReached) {
			t.Fatalf("CreateCapped at the cap = %v, want ErrKeyLimitReached", err)
		}
		if _, err := s.Revoke(ctx, first.ID, T0); err != nil {
			t.Fatal(err)
		}
		capped(t, s, "acme", 3, nil) // the revocation freed a slot
		// An hour on, the key that expired then frees another.
		k = unstored(t, "acme")
		if err := s.CreateCapped(ctx, k, 3, T0); !errors.Is(err, store.ErrKeyLimitReached) {
			t.Fatalf("CreateCapped at the cap again = %v, want ErrKeyLimitReached", err)
		}
		if err := s.CreateCapped(ctx, k, 3, T0.Add(time.Hour)); err != nil {
			t.Errorf("CreateCapped once a key expired = %v", err)
		}
	}},
	{"keys created without the cap count against it", func(t *testing.T, s store.Store) {
		for range 3 {
			MintKey(t, s, "acme")
		}
		if err := s.CreateCapped(context.Background(), unstored(t, "acme"), 3, T0); !errors.Is(err, store.ErrKeyLimitReached) {
			t.Errorf("CreateCapped after 3 plain creates = %v, want ErrKeyLimitReached", err)
		}
	}},
	{"deletion, rotation and expiry move the count", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deleted := capped(t, s, "acme", 3, nil)
		rotated := capped(t, s, "acme", 3, nil)
		capped(t, s, "acme", 3, func(k *store.Key) { k.ExpiresAt = T0.Add(time.Hour) })
		if err := s.Delete(ctx, deleted.ID); err != nil {
			t.Fatal(err)
		}
		capped(t, s, "acme", 3, nil) // the deletion freed a slot
		// The rotated key and its replacement are both active until the
		// grace ends: one over the cap.
		_, repl, err := keyrules.Mint("kg", keyrules.Replacement(rotated, T0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rotate(ctx, rotated.ID, repl, T0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			at   time.Duration
			want error
		}{
			{0, store.ErrKeyLimitReached},                         // 4 active
			{90 * time.Minute, store.ErrKeyLimitReached},          // the expiring one ended: 3
			{3 * time.Hour, nil},                                  // the grace ended too: 2
			{3*time.Hour + time.Second, store.ErrKeyLimitReached}, // and the one just created: 3
		} {
			k := unstored(t, "acme")
			if err := s.CreateCapped(ctx, k, 3, T0.Add(c.at)); !errors.Is(err, c.want) {
				t.Errorf("CreateCapped %v after T0 = %v, want %v", c.at, err, c.want)
			}
		}
	}},
	{"capped create of a taken ID is ErrKeyExists", func(t *testing.T, s store.Store) {
		k := capped(t, s, "acme", 3, nil)
		if err := s.CreateCapped(context.Background(), k, 3, T0); !errors.Is(err, store.ErrKeyExists) {
			t.Errorf("CreateCapped of a stored key = %v, want ErrKeyExists", err)
		}
	}},
	{"concurrent capped creates never pass the cap", func(t *testing.T, s store.Store) {
		const n, limit = 20, 5
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, k, err := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: T0})
				if err == nil {
					err = s.CreateCapped(context.Background(), k, limit, T0)
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
		if err != nil || len(page.Keys) != limit {
			t.Errorf("ListByOwner = %d keys, %v; want %d", len(page.Keys), err, limit)
		}
	}},
	{"Rotate is not capped", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		k := capped(t, s, "acme", 1, nil)
		_, repl, err := keyrules.Mint("kg", keyrules.Replacement(k, T0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rotate(ctx, k.ID, repl, T0.Add(time.Hour)); err != nil {
			t.Errorf("Rotate at the cap = %v", err)
		}
	}},
}

// capped creates a key for owner under the cap limit at T0, changed by
// change, and fails the test if that is refused.
func capped(t *testing.T, s store.KeyStore, owner string, limit int, change func(*store.Key)) store.Key {
	t.Helper()
	tmpl := store.Key{Owner: owner, Name: fmt.Sprint(owner, "-capped"), CreatedAt: T0}
	if change != nil {
		change(&tmpl)
	}
	_, k, err := keyrules.Mint("kg", tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCapped(context.Background(), k, limit, T0); err != nil {
		t.Fatalf("CreateCapped under the cap: %v", err)
	}
	return store.Stored(k)
}

// count is a usage count of key id of owner on day.
func count(id, owner string, day store.Day, n int64) store.UsageCount {
	return store.UsageCount{KeyID: id, Owner: owner, Day: day, Requests: n}
}

// monthly returns the key's total of month, failing the test on an error.
func monthly(t *testing.T, s store.UsageStore, id string, month store.Month) int64 {
	t.Helper()
	n, err := s.MonthlyUsage(context.Background(), id, month)
	if err != nil {
		t.Fatalf("MonthlyUsage(%s, %s): %v", id, month, err)
	}
	return n
}

var usageCases = []contractCase{
	{"AppliedSeq is the last batch applied of the instance, 0 for one never written", func(t *testing.T, s store.Store) {
		ar, ok := s.(store.AppliedReader)
		if !ok {
			t.Skip("the store is no store.AppliedReader")
		}
		ctx := context.Background()
		a := keyformat.ID("a")
		for _, seq := range []int64{1, 2, 7, 3} { // 3 after 7: taken as applied
			if err := s.AddUsage(ctx, "i1", seq, []store.UsageCount{{KeyID: a, Day: "2026-11-29", Requests: 1}}); err != nil {
				t.Fatal(err)
			}
		}
		for inst, want := range map[string]int64{"i1": 7, "i2": 0} {
			if n, err := ar.AppliedSeq(ctx, inst); err != nil || n != want {
				t.Errorf("AppliedSeq(%s) = %d, %v; want %d", inst, n, err, want)
			}
		}
	}},
	{"key totals add up per day and month; a retried batch adds nothing", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		a, b := keyformat.ID("a"), keyformat.ID("b")
		batch1 := []store.UsageCount{{KeyID: a, Day: "2026-11-29", Requests: 3}, {KeyID: a, Day: "2026-11-30", Requests: 4},
			{KeyID: b, Day: "2026-11-30", Requests: 1}}
		if err := s.AddUsage(ctx, "i1", 1, batch1); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUsage(ctx, "i1", 1, batch1); err != nil { // a retry of an applied batch
			t.Fatal(err)
		}
		if err := s.AddUsage(ctx, "i2", 1, []store.UsageCount{{KeyID: a, Day: "2026-12-01", Requests: 5},
			{KeyID: a, Day: "2026-11-30", Requests: 10}}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUsage(ctx, "i1", 2, []store.UsageCount{{KeyID: a, Day: "2026-11-29", Requests: 1}}); err != nil {
			t.Fatal(err)
		}
		days, err := s.DailyUsage(ctx, a, "2026-11-01", "2026-12-31")
		if err != nil {
			t.Fatal(err)
		}
		want := []store.DayUsage{{Day: "2026-11-29", Requests: 4}, {Day: "2026-11-30", Requests: 14}, {Day: "2026-12-01", Requests: 5}}
		if !reflect.DeepEqual(days, want) {
			t.Errorf("DailyUsage = %v, want %v", days, want)
		}
		if days, err := s.DailyUsage(ctx, a, "2026-11-30", "2026-11-30"); err != nil ||
			!reflect.DeepEqual(days, []store.DayUsage{{Day: "2026-11-30", Requests: 14}}) {
			t.Errorf("DailyUsage of one day = %v, %v", days, err)
		}
		if days, err := s.DailyUsage(ctx, keyformat.ID("none"), "2026-11-01", "2026-11-30"); err != nil || len(days) != 0 {
			t.Errorf("DailyUsage of an unused key = %v, %v", days, err)
		}
		for _, c := range []struct {
			id    string
			month store.Month
			want  int64
		}{{a, "2026-11", 18}, {a, "2026-12", 5}, {b, "2026-11", 1}, {b, "2026-10", 0}} {
			if n, err := s.MonthlyUsage(ctx, c.id, c.month); err != nil || n != c.want {
				t.Errorf("MonthlyUsage(%s) = %d, %v; want %d", c.month, n, err, c.want)
			}
		}
	}},
	{"a batch records when its keys were last used, forward only, and makes no key", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, a := MintKey(t, s, "acme")
		gone := keyformat.ID("deleted or never stored")
		before := time.Now().Truncate(time.Microsecond)
		today := store.DayOf(before)
		if err := s.AddUsage(ctx, "i1", 1, []store.UsageCount{count(a.ID, "acme", today, 2), count(gone, "acme", today, 1)}); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		got, err := s.Get(ctx, a.ID)
		if err != nil || got.LastUsedAt.Before(before) || got.LastUsedAt.After(after) {
			t.Fatalf("last used = %v, %v; want the time of the call, %v to %v", got.LastUsedAt, err, before, after)
		}
		want := got
		want.LastUsedAt = time.Time{}
		if !reflect.DeepEqual(want, a) {
			t.Errorf("key after a batch = %+v, want %+v with a last use", got, a)
		}
		if _, err := s.Get(ctx, gone); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("the key without a document after a batch: %v, want ErrKeyNotFound", err)
		}
		first := got.LastUsedAt
		time.Sleep(2 * time.Millisecond)
		if err := s.AddUsage(ctx, "i1", 1, []store.UsageCount{count(a.ID, "acme", today, 2)}); err != nil { // a retry
			t.Fatal(err)
		}
		if err := s.AddUsage(ctx, "i2", 1, []store.UsageCount{count(a.ID, "acme", "2026-01-05", 1)}); err != nil { // a late one
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, a.ID); err != nil || !got.LastUsedAt.Equal(first) {
			t.Errorf("last used after a retried and a late batch = %v, %v; want %v still", got.LastUsedAt, err, first)
		}
		if err := s.AddUsage(ctx, "i1", 2, []store.UsageCount{count(a.ID, "acme", store.DayOf(time.Now()), 1)}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, a.ID); err != nil || !got.LastUsedAt.After(first) {
			t.Errorf("last used after a new batch = %v, %v; want after %v", got.LastUsedAt, err, first)
		}
	}},
	{"each instance's batches apply at most once, in increasing order with gaps", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		a := keyformat.ID("a")
		add := func(instance string, seq, n int64) {
			t.Helper()
			if err := s.AddUsage(ctx, instance, seq, []store.UsageCount{count(a, "acme", "2026-11-30", n)}); err != nil {
				t.Fatalf("AddUsage(%s, %d) = %v", instance, seq, err)
			}
		}
		add("i1", 1, 1)
		add("i1", 5, 10)   // a gap: batches 2 to 4 were never applied
		add("i1", 3, 100)  // a late retry, below the last applied: nothing
		add("i1", 5, 1000) // the same batch number again: nothing
		add("i2", 1, 10000)
		add("i1", 6, 100000)
		if n := monthly(t, s, a, "2026-11"); n != 110011 {
			t.Errorf("MonthlyUsage = %d, want 110011 (batches i1/1, i1/5, i2/1 and i1/6 once each)", n)
		}
		if n, err := s.OwnerMonthlyUsage(ctx, "acme", "2026-11"); err != nil || n != 110011 {
			t.Errorf("OwnerMonthlyUsage = %d, %v; want 110011 as its key", n, err)
		}
	}},
	{"a failed batch is applied all or none, and a retry counts it once", func(t *testing.T, s store.Store) {
		// A batch that fails (here, on a cancelled context) leaves either
		// every count or none. Retried with
		// the same number, it counts exactly once either way.
		a, b := keyformat.ID("a"), keyformat.ID("b")
		batch := []store.UsageCount{count(a, "acme", "2026-11-29", 3), count(b, "globex", "2026-11-30", 4)}
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		err := s.AddUsage(cancelled, "i1", 1, batch)
		na, nb := monthly(t, s, a, "2026-11"), monthly(t, s, b, "2026-11")
		switch {
		case err == nil:
			t.Errorf("AddUsage with a cancelled context succeeded")
		case !(na == 0 && nb == 0 || na == 3 && nb == 4):
			t.Errorf("a failed AddUsage (%v) applied part of its batch: %d of 3, %d of 4", err, na, nb)
		}
		if err := s.AddUsage(context.Background(), "i1", 1, batch); err != nil {
			t.Fatalf("retried AddUsage = %v", err)
		}
		if na, nb := monthly(t, s, a, "2026-11"), monthly(t, s, b, "2026-11"); na != 3 || nb != 4 {
			t.Errorf("after the retry: %d and %d, want the batch once: 3 and 4", na, nb)
		}
		ctx := context.Background()
		for _, o := range []struct {
			owner string
			want  int64
		}{{"acme", 3}, {"globex", 4}} {
			if n, err := s.OwnerMonthlyUsage(ctx, o.owner, "2026-11"); err != nil || n != o.want {
				t.Errorf("OwnerMonthlyUsage(%s) = %d, %v; want %d", o.owner, n, err, o.want)
			}
		}
	}},
	{"owner totals are written with the key totals, once, per owner", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		a1, a2, g1 := keyformat.ID("acme-1"), keyformat.ID("acme-2"), keyformat.ID("globex-1")
		batch1 := []store.UsageCount{count(a1, "acme", "2026-11-29", 3), count(a1, "acme", "2026-11-30", 4),
			count(a2, "acme", "2026-11-30", 5), count(g1, "globex", "2026-11-30", 1)}
		for range 2 { // the second is a retry of an applied batch
			if err := s.AddUsage(ctx, "i1", 1, batch1); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddUsage(ctx, "i2", 1, []store.UsageCount{count(a1, "acme", "2026-12-01", 7),
			count(a2, "acme", "2026-11-29", 2), count(g1, "globex", "2026-12-01", 6)}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUsage(ctx, "i1", 1, batch1); err != nil { // a late retry, after another instance's batch
			t.Fatal(err)
		}

		checkDays := func(owner string, from, to store.Day, want []store.DayUsage) {
			t.Helper()
			days, err := s.OwnerDailyUsage(ctx, owner, from, to)
			if err != nil || !reflect.DeepEqual(days, want) {
				t.Errorf("OwnerDailyUsage(%s, %s, %s) = %v, %v; want %v", owner, from, to, days, err, want)
			}
		}
		checkMonth := func(owner string, month store.Month, want int64) {
			t.Helper()
			if n, err := s.OwnerMonthlyUsage(ctx, owner, month); err != nil || n != want {
				t.Errorf("OwnerMonthlyUsage(%s, %s) = %d, %v; want %d", owner, month, n, err, want)
			}
		}
		// Two keys of acme add up; globex stays apart.
		checkDays("acme", "2026-11-01", "2026-12-31", []store.DayUsage{{Day: "2026-11-29", Requests: 5},
			{Day: "2026-11-30", Requests: 9}, {Day: "2026-12-01", Requests: 7}})
		checkDays("acme", "2026-11-30", "2026-11-30", []store.DayUsage{{Day: "2026-11-30", Requests: 9}})
		checkDays("globex", "2026-11-01", "2026-12-31", []store.DayUsage{{Day: "2026-11-30", Requests: 1}, {Day: "2026-12-01", Requests: 6}})
		checkDays("nobody", "2026-11-01", "2026-12-31", []store.DayUsage{})
		checkMonth("acme", "2026-11", 14)
		checkMonth("acme", "2026-12", 7)
		checkMonth("globex", "2026-11", 1)
		checkMonth("globex", "2026-12", 6)
		checkMonth("nobody", "2026-11", 0)

		// Each owner's totals are the sum of its keys' totals.
		for _, o := range []struct {
			owner string
			keys  []string
		}{{"acme", []string{a1, a2}}, {"globex", []string{g1}}} {
			for _, month := range []store.Month{"2026-11", "2026-12"} {
				var sum int64
				for _, id := range o.keys {
					sum += monthly(t, s, id, month)
				}
				checkMonth(o.owner, month, sum)
			}
		}

		// A count without an owner (an old caller), or with one that cannot
		// name a document, adds to its key only, and the batch is applied.
		bad := "acme/eu"
		if err := s.AddUsage(ctx, "i1", 2, []store.UsageCount{count(a1, "", "2026-11-29", 100),
			count(keyformat.ID("bad"), bad, "2026-11-29", 50), count(a2, "acme", "2026-11-29", 1)}); err != nil {
			t.Fatal(err)
		}
		if n := monthly(t, s, a1, "2026-11"); n != 107 {
			t.Errorf("MonthlyUsage of the key counted without owner = %d, want 107", n)
		}
		if n := monthly(t, s, keyformat.ID("bad"), "2026-11"); n != 50 {
			t.Errorf("MonthlyUsage of the key with an invalid owner = %d, want 50", n)
		}
		checkMonth("acme", "2026-11", 15)
		checkDays("acme", "2026-11-29", "2026-11-29", []store.DayUsage{{Day: "2026-11-29", Requests: 6}})
		if _, err := s.OwnerMonthlyUsage(ctx, bad, "2026-11"); !errors.Is(err, store.ErrInvalidOwner) {
			t.Errorf("OwnerMonthlyUsage(%q) = %v, want ErrInvalidOwner", bad, err)
		}
		if _, err := s.OwnerDailyUsage(ctx, "", "2026-11-01", "2026-11-30"); !errors.Is(err, store.ErrInvalidOwner) {
			t.Errorf("OwnerDailyUsage of no owner = %v, want ErrInvalidOwner", err)
		}
	}},
	{"a full batch of owners is applied", func(t *testing.T, s store.Store) {
		// The largest batch with the most writes: every count of a stored
		// key and an owner of its own.
		ctx := context.Background()
		counts := make([]store.UsageCount, store.MaxUsageBatch)
		for i := range counts {
			_, k := MintKey(t, s, fmt.Sprint("o", i))
			counts[i] = count(k.ID, k.Owner, "2026-11-30", int64(i+1))
		}
		if err := s.AddUsage(ctx, "i1", 1, counts); err != nil {
			t.Fatal(err)
		}
		if k, err := s.Get(ctx, counts[store.MaxUsageBatch-1].KeyID); err != nil || k.LastUsedAt.IsZero() {
			t.Errorf("the last key of a full batch: last used %v, %v; want set", k.LastUsedAt, err)
		}
		for _, i := range []int{0, store.MaxUsageBatch / 2, store.MaxUsageBatch - 1} {
			if n, err := s.OwnerMonthlyUsage(ctx, counts[i].Owner, "2026-11"); err != nil || n != int64(i+1) {
				t.Errorf("OwnerMonthlyUsage(%s) = %d, %v; want %d", counts[i].Owner, n, err, i+1)
			}
			if n := monthly(t, s, counts[i].KeyID, "2026-11"); n != int64(i+1) {
				t.Errorf("MonthlyUsage(k%d) = %d, want %d", i, n, i+1)
			}
		}
	}},
}

var planCases = []contractCase{
	{"set then get returns the plan; set replaces it", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		want := store.Plan{Owner: "acme", RateLimit: 2.5, Burst: 10, MonthlyQuota: 1000, MaxKeys: 7,
			MintRate: 2, MintBurst: 30, StripeCustomer: "cus_NffrFeUfNV2Hib", UpdatedAt: T0.Add(123456789 * time.Nanosecond)}
		if err := s.SetPlan(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetPlan(ctx, "acme")
		want.UpdatedAt = store.StoredTime(want.UpdatedAt)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetPlan = %+v, %v\nwant %+v", got, err, want)
		}
		// The whole plan is replaced: fields left zero are zero again.
		if err := s.SetPlan(ctx, store.Plan{Owner: "acme", MaxKeys: 3, UpdatedAt: T0}); err != nil {
			t.Fatal(err)
		}
		got, err = s.GetPlan(ctx, "acme")
		if want := (store.Plan{Owner: "acme", MaxKeys: 3, UpdatedAt: T0}); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetPlan after replacing = %+v, %v\nwant %+v", got, err, want)
		}
		if _, err := s.GetPlan(ctx, "other"); !errors.Is(err, store.ErrPlanNotFound) {
			t.Errorf("GetPlan(other) = %v, want ErrPlanNotFound", err)
		}
	}},
	{"a zero updated_at is the time of the call", func(t *testing.T, s store.Store) {
		before := time.Now().Add(-time.Minute)
		if err := s.SetPlan(context.Background(), store.Plan{Owner: "acme", MaxKeys: 1}); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetPlan(context.Background(), "acme")
		if err != nil || got.UpdatedAt.Before(before) || got.UpdatedAt.After(time.Now().Add(time.Minute)) ||
			got.UpdatedAt.Location() != time.UTC {
			t.Errorf("GetPlan = %+v, %v; want updated_at now, in UTC", got, err)
		}
	}},
	{"delete removes the plan", func(t *testing.T, s store.Store) {
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
	{"set refuses a plan that keyrules.ValidatePlan refuses: ErrInvalidPlan", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for _, p := range []store.Plan{
			{Owner: "acme", RateLimit: -1},
			{Owner: "acme", Burst: keyrules.MaxBurst + 1},
			{Owner: "acme", MonthlyQuota: -1},
			{Owner: "acme", MaxKeys: keyrules.MaxPlanKeys + 1},
			{Owner: "acme", MaxKeys: -1},
			{Owner: "acme", StripeCustomer: "sub_1"},
			{Owner: "a/b"},
			{Owner: ""},
		} {
			if keyrules.ValidatePlan(p) == nil {
				t.Fatalf("ValidatePlan(%+v) = nil: the check is wrong", p)
			}
			if err := s.SetPlan(ctx, p); !errors.Is(err, store.ErrInvalidPlan) {
				t.Errorf("SetPlan(%+v) = %v, want ErrInvalidPlan", p, err)
			}
		}
		if _, err := s.GetPlan(ctx, "acme"); !errors.Is(err, store.ErrPlanNotFound) {
			t.Errorf("a refused plan was stored: %v", err)
		}
	}},
	{"owners that are no document ID are ErrInvalidOwner, not a panic", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for _, owner := range []string{"a/b", ".", "..", "__x__", ""} {
			if _, err := s.GetPlan(ctx, owner); !errors.Is(err, store.ErrInvalidOwner) {
				t.Errorf("GetPlan(%q) = %v, want ErrInvalidOwner", owner, err)
			}
			if err := s.DeletePlan(ctx, owner); !errors.Is(err, store.ErrInvalidOwner) {
				t.Errorf("DeletePlan(%q) = %v, want ErrInvalidOwner", owner, err)
			}
			k := unstored(t, owner)
			if err := s.CreateCapped(ctx, k, 10, T0); !errors.Is(err, store.ErrInvalidOwner) {
				t.Errorf("CreateCapped(owner %q) = %v, want ErrInvalidOwner", owner, err)
			}
			if _, err := s.Get(ctx, k.ID); !errors.Is(err, store.ErrKeyNotFound) {
				t.Errorf("CreateCapped(owner %q) stored the key: %v", owner, err)
			}
		}
	}},
}

var readerCases = []contractCase{
	{"ReadKey is Get and MonthlyUsage in one", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, k := MintKey(t, s, "acme", func(k *store.Key) { k.MonthlyQuota = 9; k.Scopes = []string{"a:read"} })
		if err := s.AddUsage(ctx, "i", 1, []store.UsageCount{count(k.ID, "acme", "2026-11-27", 4)}); err != nil {
			t.Fatal(err)
		}
		got, n, err := s.ReadKey(ctx, k.ID, "2026-11")
		k.LastUsedAt = time.Date(2026, 11, 27, 23, 59, 59, 999999000, time.UTC) // keyrules.LastUsed of the count
		if err != nil || !reflect.DeepEqual(got, k) || n != 4 {
			t.Errorf("ReadKey = %+v, %d, %v; want %+v and 4", got, n, err, k)
		}
		sep, err := s.Get(ctx, k.ID)
		if err != nil || !reflect.DeepEqual(got, sep) || n != monthly(t, s, k.ID, "2026-11") {
			t.Errorf("ReadKey = %+v, %d; Get and MonthlyUsage = %+v, %v, %d", got, n, sep, err, monthly(t, s, k.ID, "2026-11"))
		}
		if _, n, err := s.ReadKey(ctx, k.ID, "2026-10"); err != nil || n != 0 {
			t.Errorf("a month without usage = %d, %v; want 0", n, err)
		}
		if _, _, err := s.ReadKey(ctx, keyformat.ID("kg_nope"), "2026-11"); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("unknown key = %v, want ErrKeyNotFound", err)
		}
	}},
	{"ReadOwner is GetPlan and OwnerMonthlyUsage in one", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		if p, found, n, err := s.ReadOwner(ctx, "acme", "2026-11"); err != nil || found || n != 0 || p != (store.Plan{Owner: "acme"}) {
			t.Errorf("no plan, no usage = %+v, %v, %d, %v; want an empty plan of acme, not found, 0", p, found, n, err)
		}
		if err := s.SetPlan(ctx, store.Plan{Owner: "acme", MonthlyQuota: 30, MaxKeys: 7, UpdatedAt: T0}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUsage(ctx, "i", 1, []store.UsageCount{count(keyformat.ID("k"), "acme", "2026-11-27", 4)}); err != nil {
			t.Fatal(err)
		}
		p, found, n, err := s.ReadOwner(ctx, "acme", "2026-11")
		want := store.Plan{Owner: "acme", MonthlyQuota: 30, MaxKeys: 7, UpdatedAt: T0}
		if err != nil || !found || n != 4 || p != want {
			t.Errorf("ReadOwner = %+v, %v, %d, %v; want %+v, found, and 4", p, found, n, err, want)
		}
		sep, err := s.GetPlan(ctx, "acme")
		total, err2 := s.OwnerMonthlyUsage(ctx, "acme", "2026-11")
		if err != nil || err2 != nil || p != sep || n != total {
			t.Errorf("ReadOwner = %+v, %d; GetPlan and OwnerMonthlyUsage = %+v, %d (%v, %v)", p, n, sep, total, err, err2)
		}
		if _, _, n, err := s.ReadOwner(ctx, "acme", "2026-10"); err != nil || n != 0 {
			t.Errorf("a month without usage = %d, %v; want 0", n, err)
		}
		for _, owner := range []string{"acme/eu", ""} {
			if _, _, _, err := s.ReadOwner(ctx, owner, "2026-11"); !errors.Is(err, store.ErrInvalidOwner) {
				t.Errorf("ReadOwner(%q) = %v, want ErrInvalidOwner", owner, err)
			}
		}
	}},
}

// promptly is how long a call with an ended context may take: it should
// return at once, but a store's first call may set up a connection.
const promptly = 10 * time.Second

var contextCases = []contractCase{
	{"a cancelled context is an error, not an answer", func(t *testing.T, s store.Store) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		checkEndedContext(t, s, ctx)
	}},
	{"a passed deadline is an error, not an answer", func(t *testing.T, s store.Store) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		checkEndedContext(t, s, ctx)
	}},
}

// checkEndedContext calls every method of s with ctx, which has ended, on
// data that exists, so that an answer (a key, a plan, a total, or
// ErrKeyNotFound and the like) would show that the call ignored its context.
// Each call must return an error, within promptly.
func checkEndedContext(t *testing.T, s store.Store, ended context.Context) {
	t.Helper()
	ctx := context.Background()
	_, k := MintKey(t, s, "acme")
	if err := s.SetPlan(ctx, store.Plan{Owner: "acme", MaxKeys: 10, UpdatedAt: T0}); err != nil {
		t.Fatal(err)
	}
	counts := []store.UsageCount{count(k.ID, "acme", "2026-11-27", 4)}
	if err := s.AddUsage(ctx, "i", 1, counts); err != nil {
		t.Fatal(err)
	}
	k.LastUsedAt = keyrules.LastUsed(counts[0], time.Now())
	created, rotated, cappedKey, cappedRotated := unstored(t, "acme"), unstored(t, "acme"), unstored(t, "acme"), unstored(t, "acme")
	cursor := present(t, s)
	var usageErr error
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, k.ID); return err }},
		{"Create", func(ctx context.Context) error { return s.Create(ctx, created) }},
		{"ListByOwner", func(ctx context.Context) error { _, err := s.ListByOwner(ctx, "acme", nil, 10); return err }},
		{"Revoke", func(ctx context.Context) error { _, err := s.Revoke(ctx, k.ID, T0); return err }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, k.ID) }},
		{"Rotate", func(ctx context.Context) error { _, err := s.Rotate(ctx, k.ID, rotated, T0); return err }},
		{"CreateCapped", func(ctx context.Context) error { return s.CreateCapped(ctx, cappedKey, 10, T0) }},
		{"RotateCapped", func(ctx context.Context) error {
			_, err := s.RotateCapped(ctx, k.ID, cappedRotated, T0, 10)
			return err
		}},
		{"ReadKey", func(ctx context.Context) error { _, _, err := s.ReadKey(ctx, k.ID, "2026-11"); return err }},
		{"AddUsage", func(ctx context.Context) error { usageErr = s.AddUsage(ctx, "i", 2, counts); return usageErr }},
		{"DailyUsage", func(ctx context.Context) error {
			_, err := s.DailyUsage(ctx, k.ID, "2026-11-01", "2026-11-30")
			return err
		}},
		{"MonthlyUsage", func(ctx context.Context) error { _, err := s.MonthlyUsage(ctx, k.ID, "2026-11"); return err }},
		{"OwnerDailyUsage", func(ctx context.Context) error {
			_, err := s.OwnerDailyUsage(ctx, "acme", "2026-11-01", "2026-11-30")
			return err
		}},
		{"OwnerMonthlyUsage", func(ctx context.Context) error { _, err := s.OwnerMonthlyUsage(ctx, "acme", "2026-11"); return err }},
		{"GetPlan", func(ctx context.Context) error { _, err := s.GetPlan(ctx, "acme"); return err }},
		{"SetPlan", func(ctx context.Context) error { return s.SetPlan(ctx, store.Plan{Owner: "acme", MaxKeys: 1}) }},
		{"DeletePlan", func(ctx context.Context) error { return s.DeletePlan(ctx, "acme") }},
		{"ReadOwner", func(ctx context.Context) error { _, _, _, err := s.ReadOwner(ctx, "acme", "2026-11"); return err }},
		{"Changes", func(ctx context.Context) error { _, _, err := s.Changes(ctx, cursor, 10); return err }},
	}
	answers := []error{store.ErrKeyNotFound, store.ErrKeyExists, store.ErrKeyInactive, store.ErrKeyReplaced, store.ErrKeyLimitReached,
		store.ErrPlanNotFound, store.ErrInvalidOwner}
	for _, c := range calls {
		done := make(chan error, 1)
		go func() { done <- c.call(ended) }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s with an ended context succeeded", c.name)
			}
			for _, a := range answers {
				if errors.Is(err, a) {
					t.Errorf("%s with an ended context = %v: an answer, not an error", c.name, err)
				}
			}
		case <-time.After(promptly):
			t.Errorf("%s with an ended context did not return within %v", c.name, promptly)
		}
	}
	// The calls that failed changed nothing: a call whose context has ended
	// before it starts has no business writing.
	if got, err := s.Get(ctx, k.ID); err != nil || !reflect.DeepEqual(got, k) {
		t.Errorf("after the calls, Get = %+v, %v; want the key unchanged %+v", got, err, k)
	}
	for _, id := range []string{created.ID, rotated.ID, cappedKey.ID} {
		if _, err := s.Get(ctx, id); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("after the calls, a key that a failed call was given is stored: %v", err)
		}
	}
	// A failed AddUsage may have applied its batch (the outcome is unknown).
	if n := monthly(t, s, k.ID, "2026-11"); n != 4 && n != 8 {
		t.Errorf("after the calls, MonthlyUsage = %d, want 4 (AddUsage said %v)", n, usageErr)
	}
	if p, err := s.GetPlan(ctx, "acme"); err != nil || p.MaxKeys != 10 {
		t.Errorf("after the calls, GetPlan = %+v, %v; want max_keys 10", p, err)
	}
	wantChanges(t, s, cursor) // and recorded no change
}
