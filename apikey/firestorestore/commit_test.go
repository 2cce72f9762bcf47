package firestorestore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/apikey/storetest"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/faultproxy"
)

// proxiedStore returns a store on a project of the test's own through a
// fault proxy, and the store without it, with a key of acme stored.
func proxiedStore(t *testing.T) (p *faultproxy.Proxy, s *Store, k store.Key) {
	t.Helper()
	host, project := emulator.Project(t)
	direct := New(Config{Project: project})
	t.Cleanup(func() { direct.Close() })
	_, k = storetest.MintKey(t, store.WithTimeout(direct, 20*time.Second), "acme")
	p, err := faultproxy.Start(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	t.Setenv("FIRESTORE_EMULATOR_HOST", p.Addr())
	s = New(Config{Project: project})
	t.Cleanup(func() { s.Close() })
	if _, err := store.WithTimeout(s, 20*time.Second).Get(t.Context(), k.ID); err != nil { // connects
		t.Fatal(err)
	}
	return p, s, k
}

// TestWriteFaults: what each fault makes of a key write's error, and when
// it returns: within its deadline when no commit was sent, within twice it
// when one was (runTransaction waits for its answer), plus slack for a
// loaded machine; never for the 5 s more that the Firestore client spends
// rolling back a failed commit. A commit refused or lost is in doubt (not
// ErrNotApplied); a store down before the commit is ErrNotApplied.
func TestWriteFaults(t *testing.T) {
	const deadline, slack = time.Second, 2 * time.Second
	for _, c := range []struct {
		name       string
		fault      func(p *faultproxy.Proxy)
		notApplied bool
	}{
		{"answer lost, then down", func(p *faultproxy.Proxy) { p.LoseCommitAnswers(1, time.Minute) }, false},
		{"every answer lost", func(p *faultproxy.Proxy) { p.Set(faultproxy.LoseCommitAnswers) }, false},
		{"commit refused", func(p *faultproxy.Proxy) { p.Set(faultproxy.RefuseCommits) }, false},
		{"down", func(p *faultproxy.Proxy) { p.Set(faultproxy.Unavailable) }, true},
		{"hanging", func(p *faultproxy.Proxy) { p.Set(faultproxy.Hang) }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, s, k := proxiedStore(t)
			c.fault(p)
			ctx, cancel := context.WithTimeout(t.Context(), deadline)
			defer cancel()
			start := time.Now()
			_, err := s.Revoke(ctx, k.ID, storetest.T0)
			took := time.Since(start)
			if err == nil || errors.Is(err, store.ErrNotApplied) != c.notApplied {
				t.Errorf("Revoke = %v; want an error, ErrNotApplied %v", err, c.notApplied)
			}
			if took > 2*deadline+slack {
				t.Errorf("Revoke with a %v deadline returned after %v", deadline, took)
			}
			// A usage batch is resent under its seq, not read back: its
			// transaction ends with its deadline (a shutdown's last flush
			// has no time to spare).
			ctx, cancel = context.WithTimeout(t.Context(), deadline)
			defer cancel()
			start = time.Now()
			err = s.AddUsage(ctx, "i", 1, []store.UsageCount{{KeyID: k.ID, Owner: k.Owner, Day: "2026-12-01", Requests: 1}})
			if took := time.Since(start); err == nil || took > deadline+slack {
				t.Errorf("AddUsage with a %v deadline = %v after %v; want an error within the deadline", deadline, err, took)
			}
		})
	}
}
