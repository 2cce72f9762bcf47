// Command ffserver serves one function through the Functions Framework, the
// way Cloud Run runs a Go function, for bench/ratio.sh:
//
//	FUNCTION_TARGET=API   the bingo function: keygate's Gate in front of its
//	                      routes (Firestore, or the emulator at
//	                      FIRESTORE_EMULATOR_HOST, as the function is
//	                      configured)
//	FUNCTION_TARGET=Hello the same GET / answer without keygate
//
// With MEMORY_KEY=KEY it also serves
//
//	FUNCTION_TARGET=APIMemory the bingo function with its keys in memory,
//	                      holding just that key (owner "bench", the default
//	                      scopes): the same function without Firestore, to
//	                      tell the store's share from keygate's
//
// It listens on 127.0.0.1:$PORT. With CPUPROFILE=FILE it writes a CPU
// profile of its life to FILE when it gets SIGTERM or SIGINT. It is never
// deployed.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/keygate/keygate" // registers API
	"github.com/keygate/keygate/apikey/keyformat"
	"github.com/keygate/keygate/apikey/memstore"
	"github.com/keygate/keygate/apikey/store"
	"github.com/keygate/keygate/internal/logging"
	"github.com/keygate/keygate/internal/problem"
)

func init() {
	functions.HTTP("Hello", hello)
}

// hello writes what the bingo function's GET / writes, with the same code.
func hello(w http.ResponseWriter, r *http.Request) {
	problem.WriteJSON(w, http.StatusOK, struct {
		Message string `json:"message"`
	}{"Hello World"})
}

func main() {
	if key := os.Getenv("MEMORY_KEY"); key != "" {
		mem := memstore.New()
		k := store.Key{ID: keyformat.ID(key), Hint: keyformat.Hint(key), Owner: "bench", Name: "bench", CreatedAt: time.Now()}
		if err := mem.Create(context.Background(), k); err != nil {
			fmt.Fprintln(os.Stderr, "ffserver:", err)
			os.Exit(1)
		}
		g, err := keygate.NewGate(os.Getenv, mem, logging.NewLogger(os.Stdout))
		if err != nil {
			fmt.Fprintln(os.Stderr, "ffserver:", err)
			os.Exit(1)
		}
		functions.HTTP("APIMemory", keygate.Handler(g).ServeHTTP)
	}
	if f := os.Getenv("CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ffserver:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(out)
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
		go func() {
			<-sigs
			pprof.StopCPUProfile()
			out.Close()
			os.Exit(0)
		}()
	}
	if err := funcframework.StartHostPort("127.0.0.1", os.Getenv("PORT")); err != nil {
		fmt.Fprintln(os.Stderr, "ffserver:", err)
		os.Exit(1)
	}
}
