// Command local runs keygate's API function on this machine, with the
// Functions Framework's wrapping, as Cloud Run functions would.
//
//	go run ./cmd/local [-tls-cert FILE -tls-key FILE]
//
// It serves on HOST:PORT (default 127.0.0.1:8080), with the key holders' web
// console at /console. With FIRESTORE_EMULATOR_HOST or GOOGLE_CLOUD_PROJECT
// set it keeps keys in Firestore; with neither it keeps them in memory, mints
// a demo key (which can also sign in to the console) and prints it with a
// curl line to try.
//
// It is package devserver's first user, which serves the function in a
// server of its own, wrapped as the Functions Framework wraps it: HTTPS
// with -tls-cert and -tls-key, HTTP otherwise, with a header timeout
// (LOCAL_READ_HEADER_TIMEOUT, default 10s) and an idle timeout (120s). On SIGTERM or SIGINT it stops accepting
// connections, lets the requests in flight finish and writes the last usage
// counts, all within SHUTDOWN_TIMEOUT (8s), and exits 0; or 1 when counts
// were left unwritten, which the function then logged as usage_unwritten
// for `apikey usage replay`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey/devserver"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: local [-tls-cert FILE -tls-key FILE]")

func run(args []string, stdout io.Writer, getenv func(string) string) error {
	flags := flag.NewFlagSet("local", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	certFile := flags.String("tls-cert", "", "serve HTTPS with this PEM certificate")
	keyFile := flags.String("tls-key", "", "and this PEM private key")
	if err := flags.Parse(args); err != nil || flags.NArg() > 0 || (*certFile == "") != (*keyFile == "") {
		return errUsage
	}
	return devserver.Run(devserver.Options{
		Routes:     keygate.Handler,
		LoadConfig: keygate.LoadConfig,
		Keys: []devserver.Key{
			{Var: "KEY"},
			{Var: "ADMIN_KEY", Scopes: []string{keygate.ScopeKeysManage, keygate.ScopeBingoCheck, keygate.ScopeUsageRead}, Note: "keys:manage too"},
		},
		Name: "API",
		More: func(base string) string {
			return "or sign in with the admin key to the web console at " + base + keygate.ConsolePath + "\n"
		},
		CertFile: *certFile,
		KeyFile:  *keyFile,
		Getenv:   getenv,
		Stdout:   stdout,
	})
}
