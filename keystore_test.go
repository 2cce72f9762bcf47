package keygate

import (
	"context"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/emulator"
)

func TestMain(m *testing.M) {
	os.Exit(emulator.Main(m))
}

// emulatorConfig returns the configuration of a test on the Firestore
// emulator, in a project of its own. Its store timeout is long: the
// emulator's first calls, on a cold JVM, take seconds.
func emulatorConfig(t testing.TB, change ...func(*Config)) Config {
	t.Helper()
	_, project := emulator.Project(t)
	return testConfig(append([]func(*Config){func(c *Config) {
		c.Project = project
		c.StoreTimeout = 20 * time.Second
	}}, change...)...)
}

// newEmulatorStore returns a FirestoreStore on the emulator, in a project of
// the test's own.
func newEmulatorStore(t testing.TB, change ...func(*Config)) *firestorestore.Store {
	t.Helper()
	s := firestorestore.New(emulatorConfig(t, change...))
	t.Cleanup(func() { s.Close() })
	return s
}

// store is what both keygate stores are: a KeyStore, a UsageStore and a
// PlanStore.
type store interface {
	store.KeyStore
	store.UsageStore
	store.PlanStore
}

// storeImpls are the store implementations that must pass the contracts:
// memory, and Firestore on the emulator.
var storeImpls = []struct {
	name string
	new  func(t *testing.T) store
}{
	{"memory", func(t *testing.T) store { return memstore.New() }},
	{"firestore", func(t *testing.T) store { return newEmulatorStore(t) }},
}

// TestKeyStoreContract runs the same behaviour checks on every KeyStore.
func TestKeyStoreContract(t *testing.T) {
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			for _, c := range storeContract {
				t.Run(c.name, func(t *testing.T) { c.run(t, impl.new(t)) })
			}
		})
	}
}

var storeContract = []struct {
	name string
	run  func(t *testing.T, s store.KeyStore)
}{
	{"create then get returns the same key", func(t *testing.T, s store.KeyStore) {
		ctx := context.Background()
		_, want := mintTestKey(t, s, "acme", func(k *store.Key) {
			k.Scopes = []string{"bingo:check", "keys:manage"}
			k.CreatedAt = t0.Add(123456789 * time.Nanosecond)
			k.ExpiresAt = t0.Add(time.Hour)
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
	{"absent scopes and expiry read back empty", func(t *testing.T, s store.KeyStore) {
		_, want := mintTestKey(t, s, "acme")
		got, err := s.Get(context.Background(), want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Scopes == nil || len(got.Scopes) != 0 || !got.ExpiresAt.IsZero() || !got.RevokedAt.IsZero() {
			t.Errorf("Get = %+v, want empty scopes, no expiry, not revoked", got)
		}
	}},
	{"get unknown is ErrKeyNotFound", func(t *testing.T, s store.KeyStore) {
		if _, err := s.Get(context.Background(), keyformat.ID("nope")); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("Get = %v, want ErrKeyNotFound", err)
		}
	}},
	{"create twice is ErrKeyExists", func(t *testing.T, s store.KeyStore) {
		_, k := mintTestKey(t, s, "acme")
		if err := s.Create(context.Background(), k); !errors.Is(err, store.ErrKeyExists) {
			t.Errorf("second Create = %v, want ErrKeyExists", err)
		}
	}},
	{"list by owner is newest first and isolated", func(t *testing.T, s store.KeyStore) {
		var ids []string
		for i := range 3 {
			_, k := mintTestKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = t0.Add(time.Duration(i) * time.Minute) })
			ids = append([]string{k.ID}, ids...)
		}
		mintTestKey(t, s, "other")
		page, err := s.ListByOwner(context.Background(), "acme", nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := keyIDs(page.Keys); !reflect.DeepEqual(got, ids) || page.Next != nil {
			t.Errorf("ListByOwner = %v, next %v; want %v, no next", got, page.Next, ids)
		}
	}},
	{"list of an owner without keys is an empty last page", func(t *testing.T, s store.KeyStore) {
		mintTestKey(t, s, "acme")
		for _, after := range []*store.PagePosition{nil, {t0.Add(time.Hour), keyformat.ID("x")}} {
			page, err := s.ListByOwner(context.Background(), "nobody", after, 1)
			if err != nil || page.Keys == nil || len(page.Keys) != 0 || page.Next != nil {
				t.Errorf("ListByOwner(nobody, after %v) = %+v, %v; want an empty non-nil page, no next", after, page, err)
			}
		}
	}},
	{"list orders ties on creation time by ID, descending", func(t *testing.T, s store.KeyStore) {
		var keys []store.Key
		// Three keys share a time and two another, a microsecond apart:
		// Firestore's precision.
		for _, us := range []int{0, 0, 0, 1, 1, 2, -1} {
			_, k := mintTestKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = t0.Add(time.Duration(us) * time.Microsecond) })
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
	{"list pages continue where the last ended, without gaps or repeats", func(t *testing.T, s store.KeyStore) {
		ctx := context.Background()
		for i := range 11 { // in pairs of equal times, so pages end inside ties
			mintTestKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = t0.Add(time.Duration(i/2) * time.Second) })
		}
		mintTestKey(t, s, "other", func(k *store.Key) { k.CreatedAt = t0.Add(3 * time.Second) })
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
				if last := page.Keys[len(page.Keys)-1]; *page.Next != store.PositionOf(last) {
					t.Errorf("limit %d: next %v, want the last key's position %v", limit, *page.Next, store.PositionOf(last))
				}
				after = page.Next
			}
			if !slices.Equal(got, keyIDs(all.Keys)) {
				t.Errorf("limit %d: pages %v\nwant the whole list %v", limit, got, keyIDs(all.Keys))
			}
		}
	}},
	{"list tells a next page only when a key follows", func(t *testing.T, s store.KeyStore) {
		ctx := context.Background()
		for i := range 3 {
			mintTestKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = t0.Add(time.Duration(i) * time.Second) })
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
		first, _ := s.ListByOwner(ctx, "acme", nil, 1)
		rest, err := s.ListByOwner(ctx, "acme", first.Next, 2)
		if err != nil || len(rest.Keys) != 2 || rest.Next != nil {
			t.Errorf("the last 2 of 3 = %d keys, next %v, %v; want 2, no next", len(rest.Keys), rest.Next, err)
		}
	}},
	{"a position holds when its key is gone", func(t *testing.T, s store.KeyStore) {
		ctx := context.Background()
		var ids []string
		for i := range 4 {
			_, k := mintTestKey(t, s, "acme", func(k *store.Key) { k.CreatedAt = t0.Add(time.Duration(-i) * time.Second) })
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
	{"list refuses a limit below 1 or above MaxPageLimit", func(t *testing.T, s store.KeyStore) {
		for _, limit := range []int{0, -1, store.MaxPageLimit + 1} {
			if _, err := s.ListByOwner(context.Background(), "acme", nil, limit); err == nil {
				t.Errorf("ListByOwner(limit %d) succeeded", limit)
			}
		}
	}},
	{"revoke sets revoked_at once", func(t *testing.T, s store.KeyStore) {
		ctx := context.Background()
		_, k := mintTestKey(t, s, "acme")
		at := t0.Add(time.Hour)
		got, err := s.Revoke(ctx, k.ID, at)
		if err != nil || !got.RevokedAt.Equal(at) {
			t.Fatalf("Revoke = %v, %v", got.RevokedAt, err)
		}
		again, err := s.Revoke(ctx, k.ID, at.Add(time.Hour))
		if err != nil || !again.RevokedAt.Equal(at) {
			t.Errorf("second Revoke = %v, %v; want the first time kept", again.RevokedAt, err)
		}
		stored, _ := s.Get(ctx, k.ID)
		if !stored.RevokedAt.Equal(at) || stored.Status(at) != "revoked" {
			t.Errorf("stored RevokedAt = %v", stored.RevokedAt)
		}
		if _, err := s.Revoke(ctx, keyformat.ID("nope"), at); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("Revoke(unknown) = %v, want ErrKeyNotFound", err)
		}
	}},
	{"delete removes the key", func(t *testing.T, s store.KeyStore) {
		ctx := context.Background()
		_, k := mintTestKey(t, s, "acme")
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
	{"rotate stores the replacement and shortens the old expiry", func(t *testing.T, s store.KeyStore) {
		ctx := context.Background()
		_, old := mintTestKey(t, s, "acme")
		_, longLived := mintTestKey(t, s, "acme", func(k *store.Key) { k.ExpiresAt = t0.Add(time.Hour) })
		for _, c := range []struct {
			old       store.Key
			graceEnd  time.Time
			wantUntil time.Time
		}{
			{old, t0.Add(24 * time.Hour), t0.Add(24 * time.Hour)},           // no expiry: now + grace
			{longLived, t0.Add(48 * time.Hour), t0.Add(time.Hour)},          // never later than its own
			{longLived, t0.Add(30 * time.Minute), t0.Add(30 * time.Minute)}, // or earlier
		} {
			_, repl, _ := store.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
			got, err := s.Rotate(ctx, c.old.ID, repl, c.graceEnd)
			if err != nil {
				t.Fatal(err)
			}
			if !got.ExpiresAt.Equal(c.wantUntil) {
				t.Errorf("old expiry = %v, want %v", got.ExpiresAt, c.wantUntil)
			}
			if stored, _ := s.Get(ctx, c.old.ID); !stored.ExpiresAt.Equal(c.wantUntil) {
				t.Errorf("stored old expiry = %v, want %v", stored.ExpiresAt, c.wantUntil)
			}
			if _, err := s.Get(ctx, repl.ID); err != nil {
				t.Errorf("replacement not stored: %v", err)
			}
		}
	}},
	{"rotate refuses an inactive or unknown key and stores nothing", func(t *testing.T, s store.KeyStore) {
		ctx := context.Background()
		_, revoked := mintTestKey(t, s, "acme", func(k *store.Key) { k.RevokedAt = t0.Add(-time.Minute) })
		_, expired := mintTestKey(t, s, "acme", func(k *store.Key) { k.ExpiresAt = t0 })
		for _, c := range []struct {
			id   string
			want error
		}{{revoked.ID, store.ErrKeyInactive}, {expired.ID, store.ErrKeyInactive}, {keyformat.ID("nope"), store.ErrKeyNotFound}} {
			_, repl, _ := store.Mint("kg", store.Key{Owner: "acme", CreatedAt: t0})
			if _, err := s.Rotate(ctx, c.id, repl, t0.Add(time.Hour)); !errors.Is(err, c.want) {
				t.Errorf("Rotate = %v, want %v", err, c.want)
			}
			if _, err := s.Get(ctx, repl.ID); !errors.Is(err, store.ErrKeyNotFound) {
				t.Errorf("the refused rotation stored its replacement: %v", err)
			}
		}
	}},
	{"a cancelled context is an error, not a not-found", func(t *testing.T, s store.KeyStore) {
		_, k := mintTestKey(t, s, "acme")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Get(ctx, k.ID); err == nil || errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("Get with a cancelled context = %v", err)
		}
	}},
}

// TestFirestoreStoreDownTimesOut checks that a Firestore that does not answer
// is an error after STORE_TIMEOUT, not a hang (DocumentRef.Get retries an
// unavailable backend until its context ends).
func TestFirestoreStoreDownTimesOut(t *testing.T) {
	emulator.Host(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1") // nothing listens there
	s := firestorestore.New(testConfig(func(c *Config) {
		c.Project = "demo-down"
		c.StoreTimeout = 300 * time.Millisecond
	}))
	defer s.Close()
	start := time.Now()
	_, err := s.Get(context.Background(), keyformat.ID("x"))
	if err == nil || errors.Is(err, store.ErrKeyNotFound) {
		t.Errorf("Get = %v, want an unavailability error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Get took %v with a 300ms timeout", d)
	}
}

// TestFirestoreDocumentHasNoKey checks the stored document's fields: the
// schema of the README, and nothing that holds the key.
func TestFirestoreDocumentHasNoKey(t *testing.T) {
	s := newEmulatorStore(t)
	key, k := mintTestKey(t, s, "acme", func(k *store.Key) { k.Scopes = []string{"bingo:check"} })
	client, err := s.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	snap, err := client.Collection("api_keys").Doc(k.ID).Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	data := snap.Data()
	var fields []string
	for name, v := range data {
		fields = append(fields, name)
		if str, ok := v.(string); ok && strings.Contains(str, key[3:3+16]) {
			t.Errorf("field %s holds the key", name)
		}
	}
	want := map[string]bool{"owner": true, "name": true, "scopes": true, "hint": true, "created_at": true}
	if len(data) != len(want) {
		t.Errorf("fields = %v, want %v", fields, want)
	}
	for name := range want {
		if _, ok := data[name]; !ok {
			t.Errorf("field %s missing", name)
		}
	}
	if snap.Ref.ID != keyformat.ID(key) {
		t.Errorf("document ID = %s, want KeyID", snap.Ref.ID)
	}
}

// keyIDs are the keys' IDs.
func keyIDs(keys []store.Key) []string {
	ids := []string{}
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}
