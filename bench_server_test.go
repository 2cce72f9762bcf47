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
)

// TestBenchServe is not a test but the in-package server of bench/http.sh,
// which runs this package's test binary with KEYGATE_BENCH_SERVE=auth or
// bare; without it, it skips. It serves GET / and POST /v1/bingo/check on
// one ServeMux, with the package's own handlers: in auth mode behind the auth
// middleware (and, for bingo, its bingo:check scope check), in bare mode
// without. So the two modes differ by exactly the middleware, which
// bench/server (outside the package) cannot show for the bingo handler. It
// prints "addr=HOST:PORT" and "key=KEY" lines and serves until killed, or,
// with KEYGATE_BENCH_SERVE_FOR=DURATION, for that long and then returns, so
// that the test binary's -test.cpuprofile and -test.memprofile get written.
func TestBenchServe(t *testing.T) {
	mode := os.Getenv("KEYGATE_BENCH_SERVE")
	if mode == "" {
		t.Skip("the server of bench/http.sh: runs only with KEYGATE_BENCH_SERVE=auth|bare")
	}
	cfg := DefaultConfig()
	store := memstore.New()
	key, k, err := store.Mint(cfg.Prefix, store.Key{Owner: "bench", Name: "bench key", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Create(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	log := logging.NewLogger(io.Discard)
	keys := NewKeyCache(cfg, store, time.Now, log)
	auth := NewAuthenticator(cfg, keys, time.Now, log)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", handleHello)
	var h http.Handler
	switch mode {
	case "auth":
		mux.HandleFunc("POST /v1/bingo/check", auth.requireScope(ScopeBingoCheck, handleBingoCheck))
		h = auth.Middleware(mux)
	case "bare":
		mux.HandleFunc("POST /v1/bingo/check", handleBingoCheck)
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
