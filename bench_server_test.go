package keygate

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/bingo"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/testkit"
)

// TestBenchServe is not a test but the in-package server of bench/http.sh,
// which runs this package's test binary with KEYGATE_BENCH_SERVE=auth or
// bare; without it, it skips. It serves GET / and POST /v1/bingo/check on
// one ServeMux, with the function's own handlers (hello and bingo.Check):
// in auth mode behind the Gate's key check (Gate.Authenticate) and, for
// bingo, Gate.Protect with bingo:check (scope, limits, metering), in bare
// mode without. So the two modes differ by exactly the Gate, which
// bench/server (outside the package) cannot show for the bingo handler. It
// prints "addr=HOST:PORT" and "key=KEY" lines and serves until killed, or,
// with KEYGATE_BENCH_SERVE_FOR=DURATION, for that long and then returns, so
// that the test binary's -test.cpuprofile and -test.memprofile get written.
func TestBenchServe(t *testing.T) {
	mode := os.Getenv("KEYGATE_BENCH_SERVE")
	if mode == "" {
		t.Skip("the server of bench/http.sh: runs only with KEYGATE_BENCH_SERVE=auth|bare")
	}
	s := memstore.New()
	key, _ := testkit.MintKey(t, s, "bench", func(k *store.Key) { k.Name, k.CreatedAt = "bench key", time.Now() })
	g := apikey.New(functionConfig(t), s, apikey.WithLogger(logging.NewLogger(io.Discard)))
	defer g.Close(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", hello)
	var h http.Handler
	switch mode {
	case "auth":
		mux.Handle("POST /v1/bingo/check", g.Protect(ScopeBingoCheck, http.HandlerFunc(bingo.Check)))
		h = g.Authenticate(mux)
	case "bare":
		mux.HandleFunc("POST /v1/bingo/check", bingo.Check)
		h = mux
	default:
		t.Fatalf("KEYGATE_BENCH_SERVE=%q: want auth or bare", mode)
	}
	addr := os.Getenv("KEYGATE_BENCH_ADDR")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("addr=%s\nkey=%s\n", ln.Addr(), key)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if d := os.Getenv("KEYGATE_BENCH_SERVE_FOR"); d != "" {
		life, err := time.ParseDuration(d)
		if err != nil {
			t.Fatalf("KEYGATE_BENCH_SERVE_FOR: %v", err)
		}
		time.AfterFunc(life, func() { srv.Close() })
	}
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		t.Fatal(err)
	}
}
