package ratelimit

import (
	"testing"

	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/testkit"
)

// TestGiveBack: a token given back is taken again, once, by the key's
// bucket and its owner's; a full bucket does not outgrow its burst.
func TestGiveBack(t *testing.T) {
	now := testkit.T0
	key := &store.Key{ID: "k", Owner: "acme", RateLimit: 0.001, Burst: 3}
	plan := &store.Plan{Owner: "acme", RateLimit: 0.001, Burst: 5}
	admitted := func(l *Limits, n int) (ok int) {
		for range n {
			if l.Allow(key, plan, now).Allowed {
				ok++
			}
		}
		return ok
	}
	l := NewLimits(10)
	l.GiveBack(key, plan, now) // no buckets yet: nothing to give back
	if n := admitted(l, 5); n != 3 {
		t.Fatalf("burst 3: admitted %d of 5", n)
	}
	l.GiveBack(key, plan, now)
	l.GiveBack(key, plan, now)
	if n := admitted(l, 5); n != 2 {
		t.Errorf("two tokens given back: admitted %d, want 2", n)
	}
	// The owner's bucket, alone: of 5, the key took 3 + 2 and gave 2 back.
	other := &store.Key{ID: "other", Owner: "acme"}
	for i, want := range []bool{true, true, false} {
		if d := l.Allow(other, plan, now); d.Allowed != want {
			t.Errorf("owner's bucket, request %d: %+v, want allowed %v", i+1, d, want)
		}
	}
	l.GiveBack(other, plan, now)
	if d := l.Allow(other, plan, now); !d.Allowed || d.Remaining != 0 {
		t.Errorf("owner's bucket given one back: %+v, want 1 admitted, 0 left", d)
	}

	full := NewLimits(10)
	full.Allow(key, plan, now)
	full.GiveBack(key, plan, now)
	full.GiveBack(key, plan, now) // one more than was taken
	if n := admitted(full, 5); n != 3 {
		t.Errorf("full bucket given an extra token: admitted %d, want its burst, 3", n)
	}
}
