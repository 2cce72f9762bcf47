package devserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// panicMessage is what the Functions Framework answers, and logs, when the
// function panics.
const panicMessage = "A panic occurred during user function execution. Please see logs for more details."

// framework wraps h as the Functions Framework (v1.9, wrapHTTPFunction)
// wraps an HTTP function, so that the function behaves here as it does
// deployed: the request's context ends after timeout when it is not zero
// (CLOUD_RUN_TIMEOUT_SECONDS), and a panic is logged to errs with its stack
// and answered 500 with the header X-Google-Status: crash and a message
// that reveals nothing. The framework does not expose its handler, and a
// reverse proxy in front of its server cost a second HTTP hop on every
// request (8 times slower); framework_test.go checks this wrapping against
// the framework's own. Left out: the execution and trace IDs the framework
// puts in the context for its LogWriter (its context key is unexported, and
// the function logs with its own logger), and the log flushes it does on
// Cloud Run only (K_SERVICE).
func framework(h http.Handler, timeout time.Duration, errs io.Writer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if timeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		defer func() {
			if v := recover(); v != nil {
				fmt.Fprintf(errs, "%s\npanic message: %v\nstack trace: %v\n%s%s\n", panicMessage, v, v, debug.Stack(), panicMessage)
				w.Header().Set("X-Google-Status", "crash")
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprintln(w, panicMessage)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// requestTimeout is CLOUD_RUN_TIMEOUT_SECONDS, which Cloud Run sets to the
// service's request timeout, as a duration; zero when unset. The framework
// ignores a value that is not a number (it says so on each request); here
// it stops the start, as every other bad setting does.
func requestTimeout(getenv func(string) string) (time.Duration, error) {
	v := getenv("CLOUD_RUN_TIMEOUT_SECONDS")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("CLOUD_RUN_TIMEOUT_SECONDS=%q: want a whole number of seconds greater than zero", v)
	}
	return time.Duration(n) * time.Second, nil
}
