// Command server is a benchmark-only HTTP server for bench/http.sh: it
// serves GET / either through keygate's deployed handler (keygate.Handler
// on an apikey.Gate: the auth middleware in front of the routes) or through
// the same route without auth, so that wrk can measure what auth costs end to end. It is
// never deployed: the Cloud Function has no way to turn auth off.
//
//	server -mode auth|bare [-addr 127.0.0.1:0]
//
// It keeps keys in a memstore.Store, mints one valid key, and prints
// two lines on standard output, then serves until killed:
//
//	addr=127.0.0.1:PORT
//	key=kg_...
//
// Requests that auth refuses are logged, as JSON, to standard error; a
// successful request logs nothing, in either mode.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/keyrules"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/logging"
)

func main() {
	mode := flag.String("mode", "auth", "auth: keygate.Handler on an apikey.Gate; bare: the same route without auth")
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	flag.Parse()
	if err := run(*mode, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "bench server:", err)
		os.Exit(1)
	}
}

func run(mode, addr string) error {
	// The function's configuration with every variable at its default,
	// its default scopes included.
	cfg, err := keygate.LoadConfig(func(string) string { return "" })
	if err != nil {
		return err
	}
	mem := memstore.New()
	key, k, err := keyrules.Mint(cfg.Prefix, store.Key{Owner: "bench", Name: "bench key", CreatedAt: time.Now()})
	if err != nil {
		return err
	}
	if err := mem.Create(context.Background(), k); err != nil {
		return err
	}
	var h http.Handler
	switch mode {
	case "auth":
		g := apikey.New(cfg, mem, apikey.WithLogger(logging.NewLogger(os.Stderr)))
		defer g.Close(context.Background())
		h = keygate.Handler(g)
	case "bare":
		mux := http.NewServeMux()
		mux.HandleFunc("GET /{$}", handleHello)
		h = mux
	default:
		return errors.New("-mode must be auth or bare")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("addr=%s\nkey=%s\n", ln.Addr(), key)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

// handleHello is keygate's GET / handler (hello.go and writeJSON in
// problem.go), duplicated because the package does not export it: the
// same body, headers and calls.
func handleHello(w http.ResponseWriter, r *http.Request) {
	body, err := json.Marshal(helloResponse{Message: "Hello World"})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(http.StatusOK)
	w.Write(append(body, '\n'))
}

type helloResponse struct {
	Message string `json:"message"`
}
