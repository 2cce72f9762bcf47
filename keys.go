package keygate

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The self-service key endpoints. Every one acts only on the calling key's
// owner and needs the keys:manage scope:
//
//	POST   /v1/keys              mint a key (shown once)
//	GET    /v1/keys              the owner's keys, newest first, paginated
//	GET    /v1/keys/{id}         one key
//	DELETE /v1/keys/{id}         revoke a key
//	POST   /v1/keys/{id}/rotate  replace a key, the old one expiring after a grace
//
// A key of another owner is answered exactly like one that does not exist.

// Limits of the key endpoints.
const (
	defaultListLimit = 20
	maxListLimit     = 100
)

// keysAPI serves the key endpoints.
type keysAPI struct {
	endpoint
	store  KeyStore
	keys   *KeyCache
	prefix string
	// plans holds the owners' plans; nil (a store that keeps none) means
	// every owner gets the configured defaults.
	plans PlanStore
	cfg   Config
}

// createKeyRequest is the body of POST /v1/keys.
type createKeyRequest struct {
	Name      string    `json:"name"`
	Scopes    *[]string `json:"scopes"`
	ExpiresIn *string   `json:"expires_in"`
}

// create serves POST /v1/keys.
func (a *keysAPI) create(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	body, p := readJSONBody(w, r)
	if p == nil {
		var req createKeyRequest
		if p = decodeJSONObject(body, &req, "request", "name, scopes or expires_in"); p == nil {
			var k Key
			if k, p = a.newKey(caller, req); p == nil {
				a.mint(w, r, caller, k)
				return
			}
		}
	}
	writeProblem(w, p)
}

// newKey checks a create request and returns the key to mint.
func (a *keysAPI) newKey(caller *Key, req createKeyRequest) (Key, *Problem) {
	if err := ValidateName(req.Name); err != nil {
		return Key{}, invalidField("invalid_name", "name", err.Error())
	}
	scopes := DefaultScopes
	if req.Scopes != nil {
		scopes = *req.Scopes
		if len(scopes) == 0 {
			return Key{}, invalidField("invalid_scopes", "scopes", "want at least one scope; omit scopes for the defaults")
		}
		if err := ValidateScopes(scopes); err != nil {
			return Key{}, invalidField("invalid_scopes", "scopes", err.Error())
		}
	}
	if missing := caller.missingScope(scopes); missing != "" {
		return Key{}, insufficientScope(missing)
	}
	now := a.now()
	k := Key{Owner: caller.Owner, Name: req.Name, Scopes: slices.Clone(scopes), CreatedAt: now}
	if req.ExpiresIn != nil {
		d, err := ParseLifetime(*req.ExpiresIn)
		if err != nil {
			return Key{}, invalidField("invalid_expires_in", "expires_in", err.Error())
		}
		k.ExpiresAt = now.Add(d)
	}
	k.narrowTo(caller) // unlimited as asked, so the caller's limits
	return k, nil
}

// mint stores k under a new key, within its owner's max_keys, and answers
// 201 with the key; 409 key_limit_reached at the cap.
func (a *keysAPI) mint(w http.ResponseWriter, r *http.Request, caller *Key, k Key) {
	key, k, err := MintKey(a.prefix, k)
	limit := 0
	if err == nil {
		ctx, cancel := a.storeContext(r)
		defer cancel()
		limit, err = a.maxKeys(ctx, k.Owner)
		if err == nil {
			err = a.store.CreateCapped(ctx, k, limit, a.now())
		}
	}
	switch {
	case errors.Is(err, ErrKeyLimitReached):
		p := newProblem(http.StatusConflict, "key_limit_reached",
			"The owner already holds the most active keys its plan allows, max_keys "+strconv.Itoa(limit)+". Revoke one to make room.")
		p.MaxKeys = limit
		writeProblem(w, p)
		return
	case errors.Is(err, ErrInvalidOwner):
		writeProblem(w, newProblem(http.StatusConflict, "invalid_owner",
			"This key's owner is not a valid owner name, so it can hold no new keys. Ask the operator."))
		return
	case err != nil:
		a.storeFailed(w, r, err)
		return
	}
	a.audit(r, "create", caller, storedKey(k))
	w.Header().Set("Location", "/v1/keys/"+k.ID)
	writeJSON(w, http.StatusCreated, NewKeyView{Key: key, KeyView: ViewOf(storedKey(k), a.now())})
}

// maxKeys is the owner's effective max_keys: its plan's, or the default.
func (a *keysAPI) maxKeys(ctx context.Context, owner string) (int, error) {
	p, found := Plan{Owner: owner}, false
	if a.plans != nil {
		var err error
		if p, found, err = LoadPlan(ctx, a.plans, owner); err != nil {
			return 0, err
		}
	}
	return a.cfg.EffectivePlan(p, found).MaxKeys, nil
}

// keyListView is the body of GET /v1/keys.
type keyListView struct {
	Keys          []KeyView `json:"keys"`
	NextPageToken string    `json:"next_page_token,omitempty"`
}

// list serves GET /v1/keys?limit=N&page_token=T.
func (a *keysAPI) list(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	q := r.URL.Query()
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			writeProblem(w, invalidField("invalid_limit", "limit", quoteShort(v)+": want a whole number from 1 to "+strconv.Itoa(maxListLimit)))
			return
		}
		limit = n
	}
	after, ok := parsePageToken(q.Get("page_token"))
	if !ok {
		writeProblem(w, invalidField("invalid_page_token", "page_token", "not a token from next_page_token"))
		return
	}
	ctx, cancel := a.storeContext(r)
	defer cancel()
	page, err := a.store.ListByOwner(ctx, caller.Owner, after, limit)
	if err != nil {
		a.storeFailed(w, r, err)
		return
	}
	out := keyListView{Keys: make([]KeyView, 0, len(page.Keys))}
	now := a.now()
	for _, k := range page.Keys {
		out.Keys = append(out.Keys, ViewOf(k, now))
	}
	if page.Next != nil {
		out.NextPageToken = formatPageToken(*page.Next)
	}
	writeJSON(w, http.StatusOK, out)
}

// formatPageToken encodes p as an opaque token.
func formatPageToken(p PagePosition) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(p.CreatedAt.UnixMicro(), 10) + "." + p.ID))
}

// parsePageToken decodes a page token; "" is the first page (nil).
func parsePageToken(s string) (*PagePosition, bool) {
	if s == "" {
		return nil, true
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	micros, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || !ValidKeyID(id) {
		return nil, false
	}
	return &PagePosition{time.UnixMicro(n).UTC(), id}, true
}

// get serves GET /v1/keys/{id}.
func (a *keysAPI) get(w http.ResponseWriter, r *http.Request) {
	if k, ok := a.ownedKey(w, r); ok {
		writeJSON(w, http.StatusOK, ViewOf(k, a.now()))
	}
}

// revoke serves DELETE /v1/keys/{id}: the key is revoked, on this instance at
// once, elsewhere within KEY_CACHE_TTL.
func (a *keysAPI) revoke(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	k, ok := a.ownedKey(w, r)
	if !ok {
		return
	}
	// As for rotate: else a narrow key could cut off its owner's broad ones.
	if missing := caller.missingScope(k.GrantedScopes()); missing != "" {
		writeProblem(w, insufficientScope(missing))
		return
	}
	ctx, cancel := a.storeContext(r)
	defer cancel()
	k, err := a.store.Revoke(ctx, k.ID, a.now())
	if err != nil {
		a.storeFailed(w, r, err)
		return
	}
	a.keys.Forget(k.ID)
	a.audit(r, "revoke", caller, k)
	w.WriteHeader(http.StatusNoContent)
}

// rotateKeyRequest is the body of POST /v1/keys/{id}/rotate.
type rotateKeyRequest struct {
	Grace *string `json:"grace"`
}

// RotatedKeyView is the view of a rotation: the new key, and the key it
// replaces with its new expiry.
type RotatedKeyView struct {
	NewKeyView
	Replaces KeyView `json:"replaces"`
}

// rotate serves POST /v1/keys/{id}/rotate.
func (a *keysAPI) rotate(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	old, ok := a.ownedKey(w, r)
	if !ok {
		return
	}
	var req rotateKeyRequest
	var p *Problem
	if r.ContentLength != 0 || r.Header.Get("Content-Type") != "" { // no body: the defaults
		var body []byte
		if body, p = readJSONBody(w, r); p == nil {
			p = decodeJSONObject(body, &req, "request", "grace")
		}
	}
	grace := DefaultGrace
	if p == nil && req.Grace != nil {
		var err error
		if grace, err = ParseGrace(*req.Grace); err != nil {
			p = invalidField("invalid_grace", "grace", err.Error())
		}
	}
	if p == nil {
		if missing := caller.missingScope(old.GrantedScopes()); missing != "" {
			p = insufficientScope(missing) // else a narrower key could mint a broader one
		}
	}
	now := a.now()
	if p == nil && old.Status(now) != "active" {
		p = newProblem(http.StatusConflict, "key_not_active", "Only an active key can be rotated; this one is "+old.Status(now)+".")
	}
	if p != nil {
		writeProblem(w, p)
		return
	}
	tmpl := old.Replacement(now)
	tmpl.narrowTo(caller) // else a limited key could rotate its unlimited sibling
	key, repl, err := MintKey(a.prefix, tmpl)
	if err == nil {
		ctx, cancel := a.storeContext(r)
		defer cancel()
		old, err = a.store.Rotate(ctx, old.ID, repl, now.Add(grace))
	}
	if errors.Is(err, ErrKeyInactive) {
		writeProblem(w, newProblem(http.StatusConflict, "key_not_active", "Only an active key can be rotated."))
		return
	}
	if err != nil {
		a.storeFailed(w, r, err)
		return
	}
	a.keys.Forget(old.ID)
	a.audit(r, "rotate", caller, old, slog.String("new_key_id", repl.ID))
	w.Header().Set("Location", "/v1/keys/"+repl.ID)
	writeJSON(w, http.StatusCreated, RotatedKeyView{
		NewKeyView: NewKeyView{Key: key, KeyView: ViewOf(storedKey(repl), now)},
		Replaces:   ViewOf(old, now),
	})
}

// ownedKey reads the key named by the path's {id} and returns it if the
// caller's owner owns it; otherwise it answers 404, the same for a key of
// another owner as for none.
func (a *keysAPI) ownedKey(w http.ResponseWriter, r *http.Request) (Key, bool) {
	id := r.PathValue("id")
	notFound := func() (Key, bool) {
		writeProblem(w, newProblem(http.StatusNotFound, "key_not_found", "There is no key with this ID."))
		return Key{}, false
	}
	if !ValidKeyID(id) {
		return notFound()
	}
	ctx, cancel := a.storeContext(r)
	defer cancel()
	k, err := a.store.Get(ctx, id)
	switch {
	case errors.Is(err, ErrKeyNotFound):
		return notFound()
	case err != nil:
		a.storeFailed(w, r, err)
		return Key{}, false
	case k.Owner != callerOf(r).Owner:
		return notFound()
	}
	return k, true
}

// audit writes the NOTICE entry of a key action: who did what to which key.
// It never holds a secret.
func (a *keysAPI) audit(r *http.Request, action string, actor *Key, target Key, attrs ...slog.Attr) {
	logRequest(r.Context(), a.log, LevelNotice, r, a.project, "audit: key "+action,
		append([]slog.Attr{
			slog.String("action", action),
			slog.String("actor_key_id", actor.ID),
			slog.String("target_key_id", target.ID),
			slog.String("owner", target.Owner),
			slog.String("key_hint", target.Hint),
		}, attrs...)...)
}

// callerOf is the verified key of r.
func callerOf(r *http.Request) *Key { return &entryOf(r).key }

// earliest is the earlier of two expiries, where zero means never.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
