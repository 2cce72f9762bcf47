package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/firestorestore"
)

// A key revoked, or rotated with no grace, with the CLI is refused by a
// running Gate (another client on the same emulator project, as a function
// instance is) within its 2 s promise, plus slack for a loaded machine:
// whether the Gate is busy (a request every 50 ms) or has been idle for
// 10 s. The CLI writes the change feed in the same transaction as the
// change (the store does it); the Gate follows the feed.

// propagationBound is the Gate's 2 s promise with slack for a loaded CI
// machine.
const propagationBound = 3 * time.Second

// realRun runs the command line with the real clock, which the Gate's
// status checks use too (the harness's clock is years ahead).
func (h *harness) realRun(args ...string) string {
	h.t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(h.t.Context(), args, &stdout, &stderr, h.environ(), time.Now); code != 0 {
		h.t.Fatalf("apikey %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String()
}

// gateOn returns a handler behind a Gate on the harness's project.
func gateOn(t *testing.T, h *harness) http.Handler {
	t.Helper()
	cfg := apikey.DefaultConfig()
	cfg.Project = h.env["GOOGLE_CLOUD_PROJECT"]
	cfg.StoreTimeout = 30 * time.Second // the emulator's first calls can be slow
	s := firestorestore.New(firestorestore.Config{Project: cfg.Project, Database: cfg.Database, Collection: cfg.Collection})
	g := apikey.New(cfg, s, apikey.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	t.Cleanup(func() {
		g.Close(context.Background())
		s.Close()
	})
	return g.Protect("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
}

// get serves GET / with key and returns the status.
func get(gate http.Handler, key string) int {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	gate.ServeHTTP(w, r)
	return w.Code
}

func TestCLIChangesReachGate(t *testing.T) {
	for _, c := range []struct {
		name string
		args func(id string) []string
	}{
		{"revoke", func(id string) []string { return []string{"revoke", id} }},
		{"rotate with no grace", func(id string) []string { return []string{"rotate", id, "--grace", "0s"} }},
	} {
		for _, idle := range []bool{false, true} {
			name := c.name + ", busy"
			if idle {
				name = c.name + ", idle 10 s"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t)
				var created createdJSON
				if err := json.Unmarshal([]byte(h.realRun("create", "--owner", "acme", "--json")), &created); err != nil {
					t.Fatal(err)
				}
				gate := gateOn(t, h)
				for range 3 {
					if code := get(gate, created.Key); code != 200 {
						t.Fatalf("warm-up = %d", code)
					}
				}
				if idle {
					time.Sleep(10 * time.Second)
					h.realRun(c.args(created.ID)...)
					start := time.Now()
					if code := get(gate, created.Key); code != 401 {
						t.Fatalf("the Gate's first request after 10 s idle = %d, want 401", code)
					}
					if took := time.Since(start); took > propagationBound {
						t.Errorf("the request took %v, want at most %v", took, propagationBound)
					}
					return
				}
				busy := func(bound time.Duration) (refused time.Time) {
					tick := time.NewTicker(50 * time.Millisecond)
					defer tick.Stop()
					for deadline := time.Now().Add(bound); time.Now().Before(deadline); <-tick.C {
						switch code := get(gate, created.Key); code {
						case 401:
							return time.Now()
						case 200:
						default:
							t.Fatalf("busy request = %d", code)
						}
					}
					return time.Time{}
				}
				if !busy(1500 * time.Millisecond).IsZero() {
					t.Fatal("refused before the change")
				}
				h.realRun(c.args(created.ID)...)
				changed := time.Now()
				refused := busy(propagationBound)
				if refused.IsZero() {
					t.Fatalf("the busy Gate still accepted the key %v after the CLI's change", propagationBound)
				}
				t.Logf("refused %v after the CLI returned", refused.Sub(changed))
			})
		}
	}
}
