package main

import (
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
)

// TestRevokeDescendants: revoke --descendants revokes a key and the keys
// minted through it, transitively, and nothing else: not a sibling made by
// the operator, not another owner's key whose created_by names the root
// (a document edited by hand); without the flag only the key.
func TestRevokeDescendants(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	root := h.createJSON("--owner", "acme").ID
	sibling := h.createJSON("--owner", "acme").ID
	cfg, err := apikey.LoadConfig(h.getenv)
	if err != nil {
		t.Fatal(err)
	}
	st := firestorestore.New(firestorestore.Config{Project: cfg.Project, Database: cfg.Database, Collection: cfg.Collection})
	defer st.Close()
	mint := func(owner, by string) string {
		_, k, err := keyrules.Mint(cfg.Prefix, store.Key{Owner: owner, CreatedAt: h.clock.Now(), CreatedBy: by})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Create(t.Context(), k); err != nil {
			t.Fatal(err)
		}
		return k.ID
	}
	child := mint("acme", root)
	grand := mint("acme", child)
	grand2 := mint("acme", child)
	foreign := mint("globex", root)
	lone := mint("acme", sibling)

	if out := h.ok("show", child).stdout; !strings.Contains(out, "made by:  key "+root) {
		t.Errorf("show does not name the key that made it:\n%s", out)
	}
	if k := h.showJSON(child); k.CreatedBy != root {
		t.Errorf("show --json: created_by %q, want %s", k.CreatedBy, root)
	}
	out := h.ok("revoke", root, "--descendants").stdout
	for _, id := range []string{root, child, grand, grand2} {
		if !strings.Contains(out, "Revoked key "+id) {
			t.Errorf("revoke --descendants does not report %s:\n%s", id, out)
		}
		if k := h.showJSON(id); k.Status != "revoked" {
			t.Errorf("key %s is %s, want revoked", id, k.Status)
		}
	}
	if !strings.Contains(out, "and the 3 keys minted through it") {
		t.Errorf("revoke --descendants printed:\n%s", out)
	}
	for _, id := range []string{sibling, foreign, lone} {
		if k := h.showJSON(id); k.Status != "active" {
			t.Errorf("key %s outside the tree is %s, want active", id, k.Status)
		}
	}
	if out := h.ok("revoke", sibling).stdout; strings.Contains(out, lone) {
		t.Errorf("revoke without --descendants revoked more:\n%s", out)
	}
	if k := h.showJSON(lone); k.Status != "active" {
		t.Errorf("revoke without --descendants revoked the key its key minted")
	}
}
