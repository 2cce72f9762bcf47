package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/view"
)

// pagingStore is a memory store that records the limit of every
// ListByOwner call.
type pagingStore struct {
	*memstore.Store
	limits []int
}

func (s *pagingStore) ListByOwner(ctx context.Context, owner string, after *store.PagePosition, limit int) (store.KeyPage, error) {
	s.limits = append(s.limits, limit)
	return s.Store.ListByOwner(ctx, owner, after, limit)
}

func (s *pagingStore) Close() error { return nil }

// TestListPagesThroughAllKeys checks that list prints all of an owner's
// keys, newest first, read listPageSize at a time, as table and as JSON.
func TestListPagesThroughAllKeys(t *testing.T) {
	n := 2*listPageSize + 50
	st := &pagingStore{Store: memstore.New()}
	var want []string
	for i := range n {
		_, k, err := keyrules.Mint("kg", store.Key{Owner: "acme", Name: fmt.Sprint("k", i),
			CreatedAt: start.Add(time.Duration(i/2) * time.Second)}) // pairs tie
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Create(t.Context(), k); err != nil {
			t.Fatal(err)
		}
		want = append(want, k.ID)
	}
	keys := make([]store.Key, 0, n)
	for _, id := range want {
		k, _ := st.Get(t.Context(), id)
		keys = append(keys, k)
	}
	slices.SortFunc(keys, keyrules.ListOrder)
	want = want[:0]
	for _, k := range keys {
		want = append(want, k.ID)
	}
	run := func(args ...string) string {
		t.Helper()
		st.limits = nil
		var out, errb bytes.Buffer
		c := &cli{ctx: t.Context(), stdout: &out, stderr: &errb, getenv: func(string) string { return "" },
			now: func() time.Time { return start }, open: func(apikey.Config) keyStore { return st }}
		if code := c.main(args); code != 0 {
			t.Fatalf("apikey %v = exit %d: %s", args, code, errb.String())
		}
		if pages := (n + listPageSize - 1) / listPageSize; len(st.limits) != pages ||
			slices.ContainsFunc(st.limits, func(l int) bool { return l != listPageSize }) {
			t.Errorf("apikey %v listed with limits %v, want %d pages of %d", args, st.limits, pages, listPageSize)
		}
		return out.String()
	}

	var views []view.KeyView
	if err := json.Unmarshal([]byte(run("list", "--owner", "acme", "--json")), &views); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range views {
		got = append(got, v.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("list --json printed %d keys, want all %d newest first", len(got), n)
	}

	lines := strings.Split(strings.TrimSpace(run("list", "--owner", "acme")), "\n")[1:]
	got = got[:0]
	for _, l := range lines {
		got = append(got, strings.Fields(l)[0])
	}
	if !slices.Equal(got, want) {
		t.Errorf("list printed %d rows, want all %d keys newest first", len(got), n)
	}
}
