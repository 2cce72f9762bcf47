package firestorestore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keygate/keygate/apikey/store"
)

// TestExplain: the two first-run failures say what to do, once; others
// pass through: a deadline or UNAVAILABLE while the emulator's address
// answers, and contention, are not a missing emulator.
func TestExplain(t *testing.T) {
	emu := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("Ok")) }))
	defer emu.Close()
	live := strings.TrimPrefix(emu.URL, "http://")
	l, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers: a hung process
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hung := l.Addr().String()
	busy := fmt.Errorf("firestore: revoke key: %w: %w", store.ErrBusy, status.Error(codes.Aborted, "Transaction lock timeout."))
	creds := errors.New("creating Firestore client: credentials: could not find default credentials. See https://example")
	cases := []struct {
		name     string
		err      error
		emulator string
		want     []string
	}{
		{"dead emulator", context.DeadlineExceeded, "127.0.0.1:9", []string{"no Firestore emulator answers at 127.0.0.1:9 (FIRESTORE_EMULATOR_HOST)", "gcloud emulators firestore start"}},
		{"dead emulator, hung", status.Error(codes.Unavailable, "connection reset"), hung, []string{"no Firestore emulator answers at " + hung}},
		{"no credentials", creds, "", []string{"no Google credentials: run `gcloud auth application-default login`, or set FIRESTORE_EMULATOR_HOST"}},
		{"other", errors.New("permission denied"), "", []string{"permission denied"}},
		{"deadline without emulator", context.DeadlineExceeded, "", []string{"context deadline exceeded"}},
		{"deadline, emulator answering", context.DeadlineExceeded, live, []string{"context deadline exceeded"}},
		{"unavailable, emulator answering", status.Error(codes.Unavailable, "overloaded"), live, []string{"overloaded"}},
		{"contention", busy, "127.0.0.1:9", []string{"busy", "Transaction lock timeout"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := explain(c.err, c.emulator).Error()
			if strings.Contains(got, "no Firestore emulator") != strings.HasPrefix(c.name, "dead emulator") {
				t.Errorf("explain = %q: a missing emulator named where none is missing, or the reverse", got)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("explain = %q, want it to say %q", got, w)
				}
			}
			if again := explain(explain(c.err, c.emulator), c.emulator).Error(); again != got {
				t.Errorf("explained twice: %q", again)
			}
		})
	}
}

// TestCheckDeadEmulator: with nothing listening at FIRESTORE_EMULATOR_HOST,
// Check fails at once and names the address and the variable.
func TestCheckDeadEmulator(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("FIRESTORE_EMULATOR_HOST", addr)
	start := time.Now()
	err = New(Config{Project: "demo-check"}).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no Firestore emulator answers at "+addr+" (FIRESTORE_EMULATOR_HOST)") {
		t.Fatalf("Check = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Check took %v", d)
	}
}

// TestCheckEmulator: Check passes on a live emulator.
func TestCheckEmulator(t *testing.T) {
	s := newTestStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
