package apikey

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/apikey/storetest"
)

// readSideOnly is a store whose key and plan writes and whose management
// reads fail the test: what the request path must never call. The read
// side (readStore), the change feed and the usage calls pass.
type readSideOnly struct {
	store.Store
	t *testing.T
}

func (s readSideOnly) forbidden(call string) { s.t.Errorf("the request path called %s", call) }

func (s readSideOnly) Create(context.Context, store.Key) error { s.forbidden("Create"); return nil }
func (s readSideOnly) CreateCapped(context.Context, store.Key, int, time.Time) error {
	s.forbidden("CreateCapped")
	return nil
}
func (s readSideOnly) ListByOwner(context.Context, string, *store.PagePosition, int) (store.KeyPage, error) {
	s.forbidden("ListByOwner")
	return store.KeyPage{}, nil
}
func (s readSideOnly) Revoke(context.Context, string, time.Time) (store.Key, error) {
	s.forbidden("Revoke")
	return store.Key{}, nil
}
func (s readSideOnly) Delete(context.Context, string) error { s.forbidden("Delete"); return nil }
func (s readSideOnly) Rotate(context.Context, string, store.Key, time.Time) (store.Key, error) {
	s.forbidden("Rotate")
	return store.Key{}, nil
}
func (s readSideOnly) RotateCapped(context.Context, string, store.Key, time.Time, int) (store.Key, error) {
	s.forbidden("RotateCapped")
	return store.Key{}, nil
}
func (s readSideOnly) SetPlan(context.Context, store.Plan) error { s.forbidden("SetPlan"); return nil }
func (s readSideOnly) DeletePlan(context.Context, string) error {
	s.forbidden("DeletePlan")
	return nil
}
func (s readSideOnly) GetMany(context.Context, []string) ([]store.Key, error) {
	s.forbidden("GetMany")
	return nil, nil
}
func (s readSideOnly) RecordLeak(context.Context, string, time.Time, string) (store.Key, error) {
	s.forbidden("RecordLeak")
	return store.Key{}, nil
}

// TestProtectUsesOnlyTheReadSide: Protect, with keys and plans that have
// quotas (so that their month totals are read too), refreshed after their
// fresh window and changed on another instance, asks nothing of its store
// but readStore, the change feed and usage: it could be given a store that
// has nothing else.
func TestProtectUsesOnlyTheReadSide(t *testing.T) {
	mem := memstore.New()
	ctx := t.Context()
	if err := mem.SetPlan(ctx, store.Plan{Owner: "acme", MonthlyQuota: 1000}); err != nil {
		t.Fatal(err)
	}
	key, k := storetest.MintKey(t, mem, "acme", func(k *store.Key) { k.MonthlyQuota = 500 })
	other, _ := storetest.MintKey(t, mem, "globex")
	s := newServer(t, readSideOnly{mem, t})
	for i := range 3 {
		for _, kk := range []string{key, other, "kg_unknown"} {
			s.call(http.MethodGet, "/", kk, "")
		}
		if w := s.call(http.MethodGet, "/", key, ""); w.Code != http.StatusOK {
			t.Fatalf("round %d: %d %s", i, w.Code, w.Body)
		}
		s.clock.Advance(s.Config().CacheTTL + time.Second)
		s.waitRefreshes()
	}
	if _, err := mem.Revoke(ctx, k.ID, s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := mem.SetPlan(ctx, store.Plan{Owner: "globex", RateLimit: 5}); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(time.Minute)
	if w := s.call(http.MethodGet, "/", key, ""); w.Code != http.StatusUnauthorized {
		t.Errorf("a key revoked on another instance: %d, want 401", w.Code)
	}
	if w := s.call(http.MethodGet, "/", other, ""); w.Code != http.StatusOK {
		t.Errorf("a key whose plan changed: %d, want 200", w.Code)
	}
	s.waitRefreshes()
	if s.store.Gets.Load() == 0 {
		t.Error("no key was read: the test proves nothing")
	}
}
