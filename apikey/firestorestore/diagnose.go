package firestorestore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Explain returns err saying what to do when it is one of the two ways a
// first run goes wrong: no emulator answers at FIRESTORE_EMULATOR_HOST (the
// client waits out its deadline and says only "context deadline
// exceeded"), or there are no Google credentials (the client's message
// does not mention the emulator). Any other error is returned as it is:
// a deadline or UNAVAILABLE while the emulator answers at its address is
// the emulator being slow or busy, not missing, and a write that
// contention kept out (store.ErrBusy) says so itself.
func (s *Store) Explain(err error) error { return explain(err, os.Getenv("FIRESTORE_EMULATOR_HOST")) }

func explain(err error, emulator string) error {
	if _, done := errors.AsType[*explained](err); err == nil || done || errors.Is(err, store.ErrBusy) {
		return err
	}
	switch {
	case emulator != "" && (errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.Unavailable || status.Code(err) == codes.DeadlineExceeded):
		if !answers(emulator) {
			return noEmulator(emulator, err)
		}
	case emulator == "" && strings.Contains(err.Error(), "could not find default credentials"):
		return &explained{"no Google credentials: run `gcloud auth application-default login`, or set FIRESTORE_EMULATOR_HOST to use the emulator", err}
	}
	return err
}

// answers reports whether something answers at host: the emulator serves
// HTTP on its gRPC port ("Ok" at /), within a second even while its
// transactions wait on each other's locks. Nothing listening, or a
// listener that never answers, is no emulator.
func answers(host string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + host + "/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// explained is an error that says what to do; it wraps the store's own.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// noEmulator is the error of an emulator address where none answers.
func noEmulator(host string, err error) error {
	msg := fmt.Sprintf("no Firestore emulator answers at %s (FIRESTORE_EMULATOR_HOST): start one with `gcloud emulators firestore start --host-port=%s`, or unset the variable", host, host)
	if err != nil {
		msg += ": " + err.Error()
	}
	return &explained{msg, err}
}

// Check reads once from the store, within ctx, to learn whether it can be
// reached, so that a program can say so at start-up rather than fail every
// request later. With FIRESTORE_EMULATOR_HOST set it first dials the
// emulator, which fails at once when nothing listens there. Its errors say
// what to do (Explain).
func (s *Store) Check(ctx context.Context) error {
	if host := os.Getenv("FIRESTORE_EMULATOR_HOST"); host != "" && !answers(host) {
		return noEmulator(host, nil)
	}
	client, err := s.Client(ctx)
	if err == nil {
		_, err = client.Collection(s.collection).Doc("keygate-check").Get(ctx)
		if status.Code(err) == codes.NotFound {
			err = nil
		}
	}
	return s.Explain(err)
}
