package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/store"
)

// Leaks checks LeakStore: GetMany reads only stored keys, each once, and
// refuses more than store.MaxGetMany IDs; RecordLeak keeps the first leak,
// does not revoke, and survives a Revoke and a read back.
func Leaks(t *testing.T, newStore NewStore) { runCases(t, newStore, leakCases) }

var leakCases = []contractCase{
	{"GetMany returns the stored keys among the IDs, each once", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, a := MintKey(t, s, "acme")
		_, b := MintKey(t, s, "globex")
		_, revoked := MintKey(t, s, "acme")
		if _, err := s.Revoke(ctx, revoked.ID, T0); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetMany(ctx, []string{a.ID, keyformat.ID("nope"), b.ID, a.ID, revoked.ID})
		if err != nil {
			t.Fatal(err)
		}
		ids := keyIDs(got)
		slices.Sort(ids)
		want := []string{a.ID, b.ID, revoked.ID}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("GetMany = %v, want %v", ids, want)
		}
		for _, k := range got {
			if k.ID == revoked.ID && k.RevokedAt.IsZero() {
				t.Error("GetMany lost the revocation")
			}
		}
	}},
	{"GetMany of unknown IDs is empty, not nil", func(t *testing.T, s store.Store) {
		got, err := s.GetMany(context.Background(), []string{keyformat.ID("nope")})
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("GetMany = %v, %v; want [], nil", got, err)
		}
	}},
	{"GetMany reads store.MaxGetMany and refuses more", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, k := MintKey(t, s, "acme")
		ids := make([]string, store.MaxGetMany)
		for i := range ids {
			ids[i] = keyformat.ID(strings.Repeat("x", i+1))
		}
		ids[store.MaxGetMany-1] = k.ID
		if got, err := s.GetMany(ctx, ids); err != nil || len(got) != 1 {
			t.Errorf("GetMany of %d IDs = %d keys, %v; want 1", len(ids), len(got), err)
		}
		if _, err := s.GetMany(ctx, append(ids, k.ID)); err == nil {
			t.Errorf("GetMany of %d IDs: no error", len(ids)+1)
		}
		if _, err := s.GetMany(ctx, nil); err == nil {
			t.Error("GetMany of no IDs: no error")
		}
	}},
	{"RecordLeak keeps the first leak and does not revoke", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		_, k := MintKey(t, s, "acme")
		got, err := s.RecordLeak(ctx, k.ID, T0.Add(time.Minute+123*time.Nanosecond), "https://github.com/o/r/blob/x/a.go")
		if err != nil {
			t.Fatal(err)
		}
		want := store.Stored(k)
		want.LeakedAt, want.LeakURL = T0.Add(time.Minute), "https://github.com/o/r/blob/x/a.go"
		if !equalKeys(got, want) {
			t.Errorf("RecordLeak = %+v, want %+v", got, want)
		}
		again, err := s.RecordLeak(ctx, k.ID, T0.Add(time.Hour), "https://elsewhere")
		if err != nil || !equalKeys(again, want) {
			t.Errorf("second RecordLeak = %+v, %v; want the first leak kept", again, err)
		}
		if _, err := s.Revoke(ctx, k.ID, T0.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		read, err := s.Get(ctx, k.ID)
		want.RevokedAt = T0.Add(2 * time.Minute)
		if err != nil || !equalKeys(read, want) {
			t.Errorf("Get = %+v, %v; want %+v", read, err, want)
		}
	}},
	{"RecordLeak of an unknown key is ErrKeyNotFound", func(t *testing.T, s store.Store) {
		if _, err := s.RecordLeak(context.Background(), keyformat.ID("nope"), T0, "u"); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("RecordLeak = %v, want ErrKeyNotFound", err)
		}
	}},
}

// equalKeys compares keys as stores give them back.
func equalKeys(a, b store.Key) bool {
	a, b = store.Stored(a), store.Stored(b)
	return a.ID == b.ID && a.Owner == b.Owner && a.LeakURL == b.LeakURL && a.LeakedAt.Equal(b.LeakedAt) &&
		a.RevokedAt.Equal(b.RevokedAt) && a.CreatedAt.Equal(b.CreatedAt) && a.Hint == b.Hint
}
