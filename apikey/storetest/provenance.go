package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

// Provenance checks that a key's CreatedBy is kept by every write that
// stores a key (Create, CreateCapped, Rotate, RotateCapped) and survives
// the writes that change one (Revoke, RecordLeak), as every read gives it
// back (Get, ReadKey, ListByOwner, GetMany).
func Provenance(t *testing.T, newStore NewStore) { runCases(t, newStore, provenanceCases) }

var provenanceCases = []contractCase{
	{"created_by round-trips through every write and read", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, root := MintKey(t, s, "acme") // made by the operator: none
		mint := func() store.Key {
			_, k, err := keyrules.Mint("kg", store.Key{Owner: "acme", CreatedAt: T0, CreatedBy: root.ID})
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
		capped := mint()
		if err := s.CreateCapped(ctx, capped, 10, T0); err != nil {
			t.Fatal(err)
		}
		repl := mint()
		repl.CreatedBy = capped.ID // a key that rotated itself made its successor
		if _, err := s.RotateCapped(ctx, capped.ID, repl, T0.Add(time.Hour), 10); err != nil {
			t.Fatal(err)
		}
		plain := mint()
		if err := s.Create(ctx, plain); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Revoke(ctx, plain.ID, T0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordLeak(ctx, plain.ID, T0, "https://example.com/leak"); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{root.ID: "", capped.ID: root.ID, repl.ID: capped.ID, plain.ID: root.ID}
		check := func(how string, k store.Key) {
			t.Helper()
			if w, ok := want[k.ID]; !ok || k.CreatedBy != w {
				t.Errorf("%s: key %s created_by %q, want %q", how, k.ID, k.CreatedBy, w)
			}
		}
		for id := range want {
			k, err := s.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			check("Get", k)
			if r, ok := s.(store.KeyReader); ok {
				k, _, err := r.ReadKey(ctx, id, store.MonthOf(T0))
				if err != nil {
					t.Fatal(err)
				}
				check("ReadKey", k)
			}
		}
		page, err := s.ListByOwner(ctx, "acme", nil, 10)
		if err != nil || len(page.Keys) != len(want) {
			t.Fatalf("ListByOwner = %d keys, %v; want %d", len(page.Keys), err, len(want))
		}
		for _, k := range page.Keys {
			check("ListByOwner", k)
		}
		many, err := s.GetMany(ctx, []string{root.ID, capped.ID, repl.ID, plain.ID})
		if err != nil || len(many) != len(want) {
			t.Fatalf("GetMany = %d keys, %v; want %d", len(many), err, len(want))
		}
		for _, k := range many {
			check("GetMany", k)
		}
	}},
}
