package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/browsertest"
)

// TestConsoleShowsLeakedKeys: a key that GitHub's secret scanning found in
// public (its leak recorded and the key revoked, as the endpoint does) is
// shown revoked, with when and a link to where it was found; a URL that is
// no https address is shown as text, never as a link. A key the leaked
// key minted (created_by) says so, and that it should be revoked too.
func TestConsoleShowsLeakedKeys(t *testing.T) {
	base, env, admin := consoleServer(t, nil)
	s := firestorestore.New(firestorestore.Config{Project: envValue(env, "GOOGLE_CLOUD_PROJECT")})
	t.Cleanup(func() { s.Close() })
	const leakAt = "https://github.com/octo/demo/blob/abc/config.js"
	leak := func(name, url string) store.Key {
		_, k, err := keyrules.Mint("kg", store.Key{Owner: "grandma", Name: name, CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{s.Create(t.Context(), k), func() error { _, err := s.RecordLeak(t.Context(), k.ID, time.Now(), url); return err }(),
			func() error { _, err := s.Revoke(t.Context(), k.ID, time.Now()); return err }()} {
			if err != nil {
				t.Fatal(err)
			}
		}
		return k
	}
	linked := leak("pushed", leakAt)
	plain := leak("pasted", "javascript:alert(1)")
	_, minted, err := keyrules.Mint("kg", store.Key{Owner: "grandma", Name: "minted", CreatedAt: time.Now(), CreatedBy: linked.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), minted); err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.New(t, 1280, 900)
	check := watch(t, ctx)
	signIn(t, ctx, base, admin.Key)
	do(t, ctx, "showing revoked keys", chromedp.Click("", browsertest.ByRole("switch", "Show revoked keys")),
		chromedp.WaitVisible("", browsertest.ByRole("link", leakAt)))
	row := func(id string) string {
		return eval[string](t, ctx, `document.getElementById('key-`+id+`').innerText`)
	}
	if got := row(linked.ID); !strings.Contains(got, "revoked") || !strings.Contains(got, "Found in public") || !strings.Contains(got, leakAt) {
		t.Errorf("the leaked key's row = %q, want revoked, found in public at %s", got, leakAt)
	}
	if got := row(plain.ID); !strings.Contains(got, "Found in public") || !strings.Contains(got, "javascript:alert(1)") {
		t.Errorf("the other leaked key's row = %q", got)
	}
	if got := row(minted.ID); !strings.Contains(got, "Made by "+linked.Hint+", a key found in public: revoke this one too") {
		t.Errorf("the row of the key the leaked key minted = %q, want it named and marked", got)
	}
	if got := row(plain.ID); strings.Contains(got, "Made by") {
		t.Errorf("a key the operator made = %q, want no maker", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('a[href^="javascript"]').length`); n != 0 {
		t.Errorf("%d javascript: links on the page, want none", n)
	}
	check()
}
