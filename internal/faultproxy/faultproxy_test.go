package faultproxy_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/keygate/keygate/internal/emulator"
	"github.com/keygate/keygate/internal/faultproxy"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { os.Exit(emulator.Main(m)) }

// clients starts a proxy in front of the emulator and returns it, a client
// on the emulator itself and one through the proxy, in a project of the
// test's own.
func clients(t *testing.T) (p *faultproxy.Proxy, direct, proxied *firestore.Client) {
	t.Helper()
	host, project := emulator.Project(t)
	p, err := faultproxy.Start(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	newClient := func(host string) *firestore.Client {
		t.Setenv("FIRESTORE_EMULATOR_HOST", host)
		c, err := firestore.NewClient(t.Context(), project)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return p, newClient(host), newClient(p.Addr())
}

// exists reports whether the document is stored, read on the emulator.
func exists(t *testing.T, c *firestore.Client, doc string) bool {
	t.Helper()
	_, err := c.Doc(doc).Get(t.Context())
	if err != nil && status.Code(err) != codes.NotFound {
		t.Fatal(err)
	}
	return err == nil
}

// deadline reports whether err is the end of the call's deadline: the
// context's error when it ended in a retry's backoff, else the status.
func deadline(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded
}

// TestRelay: in Relay mode, writes and reads pass through, with their
// errors: a second Create is ALREADY_EXISTS, as on the emulator.
func TestRelay(t *testing.T) {
	p, direct, proxied := clients(t)
	p.Set(faultproxy.Relay)
	ctx := t.Context()
	if _, err := proxied.Doc("c/a").Create(ctx, map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := proxied.Doc("c/a").Create(ctx, map[string]any{"n": 2}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("second Create through the relay = %v, want ALREADY_EXISTS", err)
	}
	snap, err := proxied.Doc("c/a").Get(ctx)
	if err != nil || snap.Data()["n"] != int64(1) {
		t.Errorf("Get through the relay = %v, %v; want n 1", snap.Data(), err)
	}
	if !exists(t, direct, "c/a") || p.LostCommits() != 0 {
		t.Errorf("the relay lost a commit, or did not forward it")
	}
}

// TestLoseCommitAnswer: each write, outside a transaction and in one, is
// applied and its answer lost; reads still pass; what the client makes of it
// is what the package doc says.
func TestLoseCommitAnswer(t *testing.T) {
	p, direct, proxied := clients(t)
	for _, c := range []struct {
		name  string
		write func(ctx context.Context, c *firestore.Client, doc *firestore.DocumentRef) error
		want  codes.Code // the client's error once the resent commit is answered
	}{
		{"create", func(ctx context.Context, c *firestore.Client, doc *firestore.DocumentRef) error {
			_, err := doc.Create(ctx, map[string]any{"n": 1})
			return err
		}, codes.AlreadyExists},
		{"transaction", func(ctx context.Context, c *firestore.Client, doc *firestore.DocumentRef) error {
			return c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
				if _, err := tx.Get(doc); status.Code(err) != codes.NotFound {
					return err
				}
				return tx.Create(doc, map[string]any{"n": 1})
			})
		}, codes.InvalidArgument},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := "lost/" + c.name
			p.LoseCommitAnswers(1, 0)
			before := p.LostCommits()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := c.write(ctx, proxied, proxied.Doc(doc))
			t.Logf("client's error: %v", err)
			if status.Code(err) != c.want {
				t.Errorf("write whose answer was lost = %v, want %v", err, c.want)
			}
			if !exists(t, direct, doc) || p.LostCommits()-before != 1 {
				t.Errorf("the commit was not applied once with its answer lost (lost %d)", p.LostCommits()-before)
			}
		})
	}

	t.Run("every answer", func(t *testing.T) {
		p.Set(faultproxy.LoseCommitAnswers)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := proxied.Doc("lost/every").Set(ctx, map[string]any{"n": 1})
		if !deadline(err) || !exists(t, direct, "lost/every") {
			t.Errorf("Set with every answer lost = %v, want DEADLINE_EXCEEDED and the document stored", err)
		}
		if _, err := proxied.Doc("lost/create").Get(t.Context()); err != nil {
			t.Errorf("a read while answers are lost = %v", err)
		}
	})
}

// TestLoseThenDown: after the lost answer, every call fails UNAVAILABLE for
// the outage, and then passes again.
func TestLoseThenDown(t *testing.T) {
	p, direct, proxied := clients(t)
	if _, err := proxied.Doc("c/warm").Get(t.Context()); status.Code(err) != codes.NotFound {
		t.Fatal(err)
	}
	// An outage of 4 s: the Set (1 s deadline) and the read in the outage
	// (300 ms) end well inside it even on a loaded machine.
	const outage = 4 * time.Second
	p.LoseCommitAnswers(1, outage)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := proxied.Doc("c/a").Set(ctx, map[string]any{"n": 1})
	if !deadline(err) || !exists(t, direct, "c/a") {
		t.Errorf("Set = %v, want DEADLINE_EXCEEDED (retried into the outage) and the document stored", err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := proxied.Doc("c/a").Get(ctx); err == nil {
		t.Errorf("a read in the outage passed")
	}
	time.Sleep(outage - time.Since(start) + 300*time.Millisecond)
	if _, err := proxied.Doc("c/a").Get(t.Context()); err != nil {
		t.Errorf("a read after the outage = %v", err)
	}
	if _, err := proxied.Doc("c/b").Create(t.Context(), map[string]any{"n": 1}); err != nil {
		t.Errorf("a write after the outage = %v", err)
	}
}

// TestRefuseCommits: a write fails and is not applied; reads pass.
func TestRefuseCommits(t *testing.T) {
	p, direct, proxied := clients(t)
	p.Set(faultproxy.RefuseCommits)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := proxied.Doc("c/a").Create(ctx, map[string]any{"n": 1}); err == nil || exists(t, direct, "c/a") {
		t.Errorf("Create with commits refused = %v, stored %v; want an error and nothing stored", err, exists(t, direct, "c/a"))
	}
	if _, err := proxied.Doc("c/a").Get(t.Context()); status.Code(err) != codes.NotFound {
		t.Errorf("a read with commits refused = %v, want NOT_FOUND", err)
	}
}

// TestModesStillForward: the TCP modes are unchanged: Up forwards, and
// Unavailable fails reads.
func TestModesStillForward(t *testing.T) {
	p, _, proxied := clients(t)
	p.Set(faultproxy.Unavailable)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := proxied.Doc("c/a").Get(ctx); err == nil {
		t.Errorf("a read while Unavailable passed")
	}
	p.Set(faultproxy.Up)
	if _, err := proxied.Doc("c/a").Create(t.Context(), map[string]any{"n": 1}); err != nil {
		t.Errorf("a write when Up = %v", err)
	}
}
