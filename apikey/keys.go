package apikey

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/problem"
	"github.com/keygate/keygate/internal/view"
)

// KeysHandlers are the key holders' own endpoints, on the caller's owner's
// keys only, each to mount behind Protect with a scope of your choice; those
// under PREFIX/{id} read r.PathValue("id"). See docs/api.md.
type KeysHandlers struct {
	Create   http.Handler // POST PREFIX: mints a key, shown once
	List     http.Handler // GET PREFIX: the owner's keys, newest first, a page at a time
	Get      http.Handler // GET PREFIX/{id}
	Revoke   http.Handler // DELETE PREFIX/{id}: on every instance within 2 s
	Rotate   http.Handler // POST PREFIX/{id}/rotate: a new key; the old one expires after a grace
	KeyUsage http.Handler // GET PREFIX/{id}/usage?from=YYYY-MM-DD&to=YYYY-MM-DD: one key's usage
	Usage    http.Handler // GET (a path of yours)?from=&to=: the calling key's and its owner's usage
	WhoAmI   http.Handler // GET (a path of yours): the calling key's own view; mount it behind Protect("")
}

// KeysHandlers returns the key holders' own endpoints.
func (g *Gate) KeysHandlers() KeysHandlers {
	a := &keysAPI{g}
	return KeysHandlers{
		Create:   a.endpoint(a.create),
		List:     a.endpoint(a.list),
		Get:      a.endpoint(a.get),
		Revoke:   a.endpoint(a.revoke),
		Rotate:   a.endpoint(a.rotate),
		KeyUsage: a.endpoint(a.usage),
		Usage:    g.usageHandler(),
		WhoAmI:   g.whoAmIHandler(),
	}
}

// Limits of the key endpoints.
const (
	defaultListLimit = 20
	maxListLimit     = 100
)

// keysAPI serves the key endpoints.
type keysAPI struct{ g *Gate }

// endpoint adapts a key endpoint to an http.Handler that finds the
// caller's verified key (see Gate.caller), served as management.
func (a *keysAPI) endpoint(f func(http.ResponseWriter, *http.Request, *cacheEntry)) http.Handler {
	return management{http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := a.g.caller(w, r); e != nil {
			f(w, r, e)
		}
	})}
}

// createKeyRequest is the body of POST /v1/keys.
type createKeyRequest struct {
	Name      string    `json:"name"`
	Scopes    *[]string `json:"scopes"`
	ExpiresIn *string   `json:"expires_in"`
}

// create serves POST /v1/keys.
func (a *keysAPI) create(w http.ResponseWriter, r *http.Request, caller *cacheEntry) {
	body, p := problem.ReadJSON(w, r)
	if p == nil {
		var req createKeyRequest
		if p = problem.DecodeObject(body, &req, "request"); p == nil {
			var k store.Key
			var missing string
			if k, missing, p = a.newKey(caller, req); missing != "" {
				a.g.refuse(w, r, insufficientScope(missing), caller.key.Hint)
				return
			}
			if p == nil {
				a.mint(w, r, caller, k)
				return
			}
		}
	}
	problem.Write(w, p)
}

// newKey checks a create request and returns the key to mint, or the
// first scope asked for that the caller lacks.
func (a *keysAPI) newKey(caller *cacheEntry, req createKeyRequest) (store.Key, string, *problem.Problem) {
	if err := keyrules.ValidateName(req.Name); err != nil {
		return store.Key{}, "", problem.InvalidField(codeInvalidName, "name", err.Error())
	}
	scopes := a.g.cfg.DefaultScopes
	if req.Scopes != nil {
		scopes = *req.Scopes
		if len(scopes) == 0 {
			return store.Key{}, "", problem.InvalidField(codeInvalidScopes, "scopes", "want at least one scope; omit scopes for the defaults")
		}
		if err := keyrules.ValidateScopes(scopes); err != nil {
			return store.Key{}, "", problem.InvalidField(codeInvalidScopes, "scopes", err.Error())
		}
	}
	if missing := caller.missingScope(scopes); missing != "" {
		return store.Key{}, missing, nil
	}
	now := a.g.now()
	k := store.Key{Owner: caller.key.Owner, Name: req.Name, Scopes: slices.Clone(scopes), CreatedAt: now}
	if req.ExpiresIn != nil {
		d, err := keyrules.ParseLifetime(*req.ExpiresIn)
		if err != nil {
			return store.Key{}, "", problem.InvalidField(codeInvalidExpiresIn, "expires_in", err.Error())
		}
		k.ExpiresAt = now.Add(d)
	}
	narrowTo(&k, &caller.key) // unlimited as asked, so the caller's limits
	return k, "", nil
}

// mint stores k under a new key, within its owner's max_keys, and answers
// 201 with the key; 409 key_limit_reached at the cap.
func (a *keysAPI) mint(w http.ResponseWriter, r *http.Request, caller *cacheEntry, k store.Key) {
	key, k, err := keyrules.Mint(a.g.cfg.Prefix, k)
	limit := 0
	if err == nil {
		limit, err = a.maxKeys(r.Context(), k.Owner)
		if err == nil {
			err = a.g.store.CreateCapped(r.Context(), k, limit, a.g.now())
		}
	}
	switch p := capRefusal(err, limit, "The owner already holds the most active keys its plan allows, max_keys "+strconv.Itoa(limit)+". Revoke one to make room."); {
	case p != nil:
		problem.Write(w, p)
		return
	case err != nil:
		e := a.g.storeUnavailable(err)
		if e.Code == CodeOutcomeUnknown { // its secret is lost with the answer: say which key to look for
			e.Detail = "The new key was sent to the store, but the store's answer was lost and reading it back failed: it may or may not have been created. " +
				"Its ID is " + k.ID + ": if GET " + path.Join(r.URL.Path, k.ID) + " finds it, revoke it, since its key cannot be shown again; then create another."
		}
		a.g.refuse(w, r, e, caller.key.Hint)
		return
	}
	a.audit(r, "create", caller, store.Stored(k))
	w.Header().Set("Location", path.Join(r.URL.Path, k.ID))
	problem.WriteJSON(w, http.StatusCreated, view.NewKeyView{Key: key, KeyView: a.view(store.Stored(k), a.g.now())})
}

// capRefusal is the problem of a capped write that the store refused for
// the owner's cap of limit keys (409 key_limit_reached, saying detail) or
// for its owner (409 invalid_owner); nil for any other err.
func capRefusal(err error, limit int, detail string) *problem.Problem {
	switch {
	case errors.Is(err, store.ErrKeyLimitReached):
		p := problem.New(http.StatusConflict, codeKeyLimitReached, detail)
		p.MaxKeys = limit
		return p
	case errors.Is(err, store.ErrInvalidOwner):
		return problem.New(http.StatusConflict, codeInvalidOwner,
			"This key's owner is not a valid owner name, so it can hold no new keys. Ask the operator.")
	}
	return nil
}

// maxKeys is the owner's effective max_keys: its plan's, or the default.
func (a *keysAPI) maxKeys(ctx context.Context, owner string) (int, error) {
	p, found, err := keyrules.LoadPlan(ctx, a.g.store, owner)
	if err != nil {
		return 0, err
	}
	return a.g.cfg.plans().Effective(p, found).MaxKeys, nil
}

// keyListView is the body of GET /v1/keys.
type keyListView struct {
	Keys          []view.KeyView `json:"keys"`
	NextPageToken string         `json:"next_page_token,omitempty"`
}

// list serves GET /v1/keys?limit=N&page_token=T.
func (a *keysAPI) list(w http.ResponseWriter, r *http.Request, caller *cacheEntry) {
	q := r.URL.Query()
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			problem.Write(w, problem.InvalidField(codeInvalidLimit, "limit", problem.QuoteShort(v)+": want a whole number from 1 to "+strconv.Itoa(maxListLimit)))
			return
		}
		limit = n
	}
	after, ok := parsePageToken(q.Get("page_token"))
	if !ok {
		problem.Write(w, problem.InvalidField(codeInvalidPageToken, "page_token", "not a token from next_page_token"))
		return
	}
	page, err := a.g.store.ListByOwner(r.Context(), caller.key.Owner, after, limit)
	if err != nil {
		a.g.refuse(w, r, a.g.storeUnavailable(err), caller.key.Hint)
		return
	}
	out := keyListView{Keys: make([]view.KeyView, 0, len(page.Keys))}
	now := a.g.now()
	for _, k := range page.Keys {
		out.Keys = append(out.Keys, a.view(k, now))
	}
	if page.Next != nil {
		out.NextPageToken = formatPageToken(*page.Next)
	}
	problem.WriteJSON(w, http.StatusOK, out)
}

// formatPageToken encodes p as an opaque token.
func formatPageToken(p store.PagePosition) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(p.CreatedAt.UnixMicro(), 10) + "." + p.ID))
}

// parsePageToken decodes a page token; "" is the first page (nil).
func parsePageToken(s string) (*store.PagePosition, bool) {
	if s == "" {
		return nil, true
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	micros, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || !keyformat.ValidID(id) {
		return nil, false
	}
	p := store.PagePosition{CreatedAt: time.UnixMicro(n).UTC(), ID: id}
	if !keyrules.ValidPagePosition(p) {
		return nil, false
	}
	return &p, true
}

// get serves GET /v1/keys/{id}.
func (a *keysAPI) get(w http.ResponseWriter, r *http.Request, caller *cacheEntry) {
	if k, ok := a.ownedKey(w, r, caller); ok {
		problem.WriteJSON(w, http.StatusOK, a.view(k, a.g.now()))
	}
}

// revoke serves DELETE /v1/keys/{id}: the key is revoked, on this instance at
// once, elsewhere within 2 s (the store records the change, which the other
// instances follow: changes.go).
func (a *keysAPI) revoke(w http.ResponseWriter, r *http.Request, caller *cacheEntry) {
	k, ok := a.ownedKey(w, r, caller)
	if !ok {
		return
	}
	// As for rotate: else a narrow key could cut off its owner's broad ones.
	if missing := caller.missingScope(grantedScopes(&k, a.g.cfg.DefaultScopes)); missing != "" {
		a.g.refuse(w, r, insufficientScope(missing), caller.key.Hint)
		return
	}
	k, err := a.g.store.Revoke(r.Context(), k.ID, a.g.now())
	if err != nil {
		a.g.refuse(w, r, a.g.storeUnavailable(err), caller.key.Hint)
		return
	}
	a.g.keys.Forget(k.ID)
	a.audit(r, "revoke", caller, k)
	w.WriteHeader(http.StatusNoContent)
}

// rotateKeyRequest is the body of POST /v1/keys/{id}/rotate.
type rotateKeyRequest struct {
	Grace *string `json:"grace"`
}

// rotate serves POST /v1/keys/{id}/rotate.
func (a *keysAPI) rotate(w http.ResponseWriter, r *http.Request, caller *cacheEntry) {
	old, ok := a.ownedKey(w, r, caller)
	if !ok {
		return
	}
	var req rotateKeyRequest
	var p *problem.Problem
	if r.ContentLength != 0 || r.Header.Get("Content-Type") != "" { // no body: the defaults
		var body []byte
		if body, p = problem.ReadJSON(w, r); p == nil {
			p = problem.DecodeObject(body, &req, "request")
		}
	}
	grace := keyrules.DefaultGrace
	if p == nil && req.Grace != nil {
		var err error
		if grace, err = keyrules.ParseGrace(*req.Grace); err != nil {
			p = problem.InvalidField(codeInvalidGrace, "grace", err.Error())
		}
	}
	if p != nil {
		problem.Write(w, p)
		return
	}
	if missing := caller.missingScope(grantedScopes(&old, a.g.cfg.DefaultScopes)); missing != "" {
		// Else a narrower key could mint a broader one.
		a.g.refuse(w, r, insufficientScope(missing), caller.key.Hint)
		return
	}
	now := a.g.now()
	if st := old.Status(now); st != store.StatusActive {
		problem.Write(w, problem.New(http.StatusConflict, codeKeyNotActive, "Only an active key can be rotated; this one is "+string(st)+"."))
		return
	}
	tmpl := keyrules.Replacement(old, now)
	narrowTo(&tmpl, &caller.key) // else a limited key could rotate its unlimited sibling
	key, repl, err := keyrules.Mint(a.g.cfg.Prefix, tmpl)
	limit, replacedBy := 0, old.ReplacedBy
	if err == nil {
		if limit, err = a.maxKeys(r.Context(), old.Owner); err == nil {
			old, err = a.g.store.RotateCapped(r.Context(), old.ID, repl, now.Add(grace), limit)
		}
	}
	switch p := capRefusal(err, limit, "The owner holds more than its plan's max_keys "+strconv.Itoa(limit)+" active keys, counting keys in a rotation's grace: "+
		"a rotation with a grace may take it one key over max_keys only while no other is in progress. Revoke a key, rotate with grace 0s, or rotate once the grace ends."); {
	case errors.Is(err, store.ErrKeyInactive):
		problem.Write(w, problem.New(http.StatusConflict, codeKeyNotActive, "Only an active key can be rotated."))
		return
	case errors.Is(err, store.ErrKeyReplaced):
		if replacedBy != "" { // else replaced since it was read
			replacedBy = ", key " + replacedBy + ","
		}
		problem.Write(w, problem.New(http.StatusConflict, codeKeyReplaced, "This key was rotated already and its replacement"+replacedBy+
			" is active: rotate the replacement instead, or revoke it to rotate this key again."))
		return
	case p != nil:
		problem.Write(w, p)
		return
	}
	if err != nil {
		a.g.refuse(w, r, a.g.storeUnavailable(err), caller.key.Hint)
		return
	}
	a.g.keys.Forget(old.ID)
	a.audit(r, "rotate", caller, old, slog.String("new_key_id", repl.ID))
	w.Header().Set("Location", path.Join(path.Dir(path.Dir(r.URL.Path)), repl.ID))
	problem.WriteJSON(w, http.StatusCreated, view.RotatedKeyView{
		NewKeyView: view.NewKeyView{Key: key, KeyView: a.view(store.Stored(repl), now)},
		Replaces:   a.view(old, now),
	})
}

// ownedKey reads the key named by the path's {id} and returns it if the
// caller's owner owns it; otherwise it answers 404, the same for a key of
// another owner as for none.
func (a *keysAPI) ownedKey(w http.ResponseWriter, r *http.Request, caller *cacheEntry) (store.Key, bool) {
	id := r.PathValue("id")
	if id == "" {
		a.g.logRequest(r, slog.LevelError,
			`a keygate key endpoint is mounted on a route without the path value "id" (r.SetPathValue): request refused`)
		problem.Write(w, problem.New(http.StatusInternalServerError, CodeMisconfigured,
			"The service is misconfigured; its logs say how."))
		return store.Key{}, false
	}
	notFound := func() (store.Key, bool) {
		problem.Write(w, problem.New(http.StatusNotFound, codeKeyNotFound, "There is no key with this ID."))
		return store.Key{}, false
	}
	if !keyformat.ValidID(id) {
		return notFound()
	}
	k, err := a.g.store.Get(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrKeyNotFound):
		return notFound()
	case err != nil:
		a.g.refuse(w, r, a.g.storeUnavailable(err), caller.key.Hint)
		return store.Key{}, false
	case k.Owner != caller.key.Owner:
		return notFound()
	}
	return k, true
}

// audit writes the NOTICE entry of a key action: who did what to which key.
// It never holds a secret.
func (a *keysAPI) audit(r *http.Request, action string, actor *cacheEntry, target store.Key, attrs ...slog.Attr) {
	a.g.logRequest(r, logging.LevelNotice, "audit: key "+action,
		append([]slog.Attr{
			slog.String("action", action),
			slog.String("actor_key_id", actor.key.ID),
			slog.String("target_key_id", target.ID),
			slog.String("owner", target.Owner),
			slog.String("key_hint", target.Hint),
		}, attrs...)...)
}

// view is k's view at now.
func (a *keysAPI) view(k store.Key, now time.Time) view.KeyView {
	return view.Of(k, now, a.g.cfg.DefaultScopes)
}

// missingScope returns the first of scopes that e does not grant, or "".
func (e *cacheEntry) missingScope(scopes []string) string {
	for _, s := range scopes {
		if !e.grants(s) {
			return s
		}
	}
	return ""
}

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

// narrowTo caps k's expiry and limits to the caller's, field by field, so
// that a key never mints a key broader than itself: the earlier expiry, the
// lower rate, burst and quota, where zero (none) is broader than any value.
// A rate without a burst allows one second's worth, so that is the burst
// compared.
func narrowTo(k, caller *store.Key) {
	k.ExpiresAt = earliest(k.ExpiresAt, caller.ExpiresAt)
	rate := keyrules.Tighter(k.RateLimit, caller.RateLimit)
	burst := keyrules.Tighter(keyrules.EffectiveBurst(*k), keyrules.EffectiveBurst(*caller))
	if burst == keyrules.EffectiveBurst(store.Key{RateLimit: rate}) {
		burst = 0 // the default of the rate: store none, as the keys did
	}
	k.RateLimit, k.Burst = rate, burst
	k.MonthlyQuota = keyrules.Tighter(k.MonthlyQuota, caller.MonthlyQuota)
}
