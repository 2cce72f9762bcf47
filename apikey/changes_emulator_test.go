package apikey

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/firestorestore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/emulator"
)

// The change feed on the Firestore emulator, with the real clock: two
// instances, each with a Firestore client of its own on one project, as
// two instances of the function. A key changed through a's API is refused
// by b within the promise, syncMaxAge, plus slack for a loaded machine:
// these are correctness checks with a bound, not measurements (see
// BenchmarkRevocationSeconds for those).

// propagationBound is syncMaxAge with slack for a loaded CI machine.
const propagationBound = syncMaxAge + time.Second

// realInstance returns a real-clock server on the emulator project, with a
// client of its own.
func realInstance(t testing.TB, project string) *server {
	t.Helper()
	s := firestorestore.New(firestorestore.Config{Project: project})
	t.Cleanup(func() { s.Close() })
	return newRealServer(t, s)
}

// twoRealInstances returns two real-clock servers on a new emulator project.
func twoRealInstances(t testing.TB) (a, b *server) {
	t.Helper()
	_, project := emulator.Project(t)
	return realInstance(t, project), realInstance(t, project)
}

// apiChanges are the ways a key stops working through a's API.
var apiChanges = []struct {
	name   string
	change func(t testing.TB, a *server, key string, k store.Key)
}{
	{"revoked", func(t testing.TB, a *server, key string, k store.Key) {
		if w := a.call("DELETE", "/v1/keys/"+k.ID, key, ""); w.Code != http.StatusNoContent {
			t.Fatalf("revoke = %d %s", w.Code, w.Body)
		}
	}},
	{"rotated with no grace", func(t testing.TB, a *server, key string, k store.Key) {
		if w := a.call("POST", "/v1/keys/"+k.ID+"/rotate", key, `{"grace":"0s"}`); w.Code != http.StatusCreated {
			t.Fatalf("rotate = %d %s", w.Code, w.Body)
		}
	}},
}

// warm mints a key that may use the keys API, and has b cache it.
func warm(t testing.TB, a, b *server) (string, store.Key) {
	t.Helper()
	key, k := a.mint(t, "acme", func(k *store.Key) { k.Scopes = []string{scopeKeys, scopeThings} })
	for range 3 {
		if w := b.do("GET", "/", "", key); w.Code != 200 {
			t.Fatalf("warm-up on b = %d %s", w.Code, w.Body)
		}
	}
	return key, k
}

// busyUntilRefused serves GET / with key on b every 50 ms until it is
// refused, or bound has passed; it returns when the refusal came, or the
// zero time.
func busyUntilRefused(t testing.TB, b *server, key string, bound time.Duration) time.Time {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); <-tick.C {
		switch w := b.do("GET", "/", "", key); w.Code {
		case 401:
			return time.Now()
		case 200:
		default:
			t.Fatalf("b = %d %s", w.Code, w.Body)
		}
	}
	return time.Time{}
}

// TestChangesOnEmulatorBusy: b serves a request every 50 ms; a changes the
// key; b refuses it within the bound, and no request of b waited for a
// sync.
func TestChangesOnEmulatorBusy(t *testing.T) {
	for _, c := range apiChanges {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a, b := twoRealInstances(t)
			key, k := warm(t, a, b)
			// Busy for a while first, so that b is in its busy rhythm.
			if at := busyUntilRefused(t, b, key, 1500*time.Millisecond); !at.IsZero() {
				t.Fatal("refused before the change")
			}
			waits := b.feed.waits.Load()
			c.change(t, a, key, k)
			changed := time.Now()
			refused := busyUntilRefused(t, b, key, propagationBound)
			if refused.IsZero() {
				t.Fatalf("b still accepted the key %v after the change", propagationBound)
			}
			t.Logf("refused %v after the change's response", refused.Sub(changed))
			if n := b.feed.waits.Load() - waits; n != 0 {
				t.Errorf("%d requests of busy b waited for a sync, want 0", n)
			}
		})
	}
}

// TestChangesOnEmulatorIdle: b, idle for 10 s, gets a request just after a
// changed the key: it is refused at once (the request waits for one sync).
func TestChangesOnEmulatorIdle(t *testing.T) {
	for _, c := range apiChanges {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a, b := twoRealInstances(t)
			key, k := warm(t, a, b)
			time.Sleep(10 * time.Second)
			c.change(t, a, key, k)
			start := time.Now()
			w := b.do("GET", "/", "", key)
			took := time.Since(start)
			if w.Code != 401 {
				t.Fatalf("b's first request after 10 s idle = %d %s, want 401", w.Code, w.Body)
			}
			if took > propagationBound {
				t.Errorf("the request took %v, want at most %v", took, propagationBound)
			}
			t.Logf("refused by the first request, which took %v", took)
		})
	}
}

// TestChangesOnEmulatorStartOver: 20 owners revoke 2,000 keys in the store
// while b, which cached 15 keys of another owner, is idle; b's next sync
// finds more than it reads, and starts over. The 15 keys, sent at once from
// one address, are all served, none refused too_many_unknown_keys (they
// were 10 × 200 and 5 × 429 when a start-over purged the cache), and the
// start-over is logged.
func TestChangesOnEmulatorStartOver(t *testing.T) {
	_, project := emulator.Project(t)
	st := firestorestore.New(firestorestore.Config{Project: project})
	t.Cleanup(func() { st.Close() })
	b := realInstance(t, project)
	keys := make([]string, 15)
	for i := range keys {
		keys[i], _ = b.mint(t, "other")
		b.want(t, keys[i], 200, "warm-up")
	}
	idleSince := time.Now()
	took := revokeMany(t, st, 20, 100)
	t.Logf("20 owners revoked 2,000 keys in %v", took)
	time.Sleep(time.Until(idleSince.Add(syncMaxAge))) // so that b waits for its sync
	start := time.Now()
	got := b.getAll(keys, nil)
	t.Logf("15 cached keys at once after the start-over: %v in %v", got, time.Since(start))
	if got[200] != len(keys) {
		t.Errorf("after the start-over, 15 cached keys at once: %v, want 15 × 200", got)
	}
	if !strings.Contains(b.logs.String(), startOverLogged) {
		t.Errorf("the start-over was not logged:\n%s", b.logs)
	}
}
