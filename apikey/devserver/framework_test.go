package devserver

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

// wrapped is the function of TestFrameworkWrapping: it panics on /panic,
// panics after writing on /panic-late, and otherwise says whether its
// context has a deadline.
func wrapped(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/wrapped/panic":
		panic("the function's secret")
	case "/wrapped/panic-late":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "partial")
		panic("the function's secret")
	}
	_, ok := r.Context().Deadline()
	fmt.Fprintf(w, "deadline: %v", ok)
}

// TestFrameworkWrapping serves one function through the Functions
// Framework itself and through cmd/local's framework wrapping, and expects
// the same answers from both: status, X-Google-Status, body (a panic's
// message never reveals the panic's value), and a deadline on the request
// exactly when CLOUD_RUN_TIMEOUT_SECONDS is set.
func TestFrameworkWrapping(t *testing.T) {
	t.Setenv("FUNCTION_TARGET", "") // serve every function at its path
	t.Setenv("CLOUD_RUN_TIMEOUT_SECONDS", "30")
	if err := funcframework.RegisterHTTPFunctionContext(t.Context(), "/wrapped/", wrapped); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	go funcframework.StartHostPort("127.0.0.1", port) // runs until the test binary exits
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Functions Framework does not listen")
		}
	}
	var errs strings.Builder
	ours := httptest.NewServer(framework(http.HandlerFunc(wrapped), 30*time.Second, &errs))
	defer ours.Close()
	noTimeout := httptest.NewServer(framework(http.HandlerFunc(wrapped), 0, io.Discard))
	defer noTimeout.Close()

	fetch := func(url string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Google-Status"), string(b)
	}
	for _, path := range []string{"/wrapped/", "/wrapped/panic", "/wrapped/panic-late"} {
		t.Run(path, func(t *testing.T) {
			code, status, body := fetch("http://127.0.0.1:" + port + path)
			gotCode, gotStatus, gotBody := fetch(ours.URL + path)
			if gotCode != code || gotStatus != status || gotBody != body {
				t.Errorf("cmd/local: %d X-Google-Status %q %q; the framework: %d %q %q", gotCode, gotStatus, gotBody, code, status, body)
			}
			if strings.Contains(gotBody, "secret") {
				t.Errorf("the answer reveals the panic: %q", gotBody)
			}
		})
	}
	if _, _, body := fetch(ours.URL + "/wrapped/"); body != "deadline: true" {
		t.Errorf("with CLOUD_RUN_TIMEOUT_SECONDS: %q, want a deadline", body)
	}
	if _, _, body := fetch(noTimeout.URL + "/wrapped/"); body != "deadline: false" {
		t.Errorf("without CLOUD_RUN_TIMEOUT_SECONDS: %q, want no deadline", body)
	}
	if !strings.Contains(errs.String(), "panic message: the function's secret") || !strings.Contains(errs.String(), "goroutine") {
		t.Errorf("the panic and its stack are not logged: %q", errs.String())
	}
}

func TestRequestTimeout(t *testing.T) {
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{{"", 0, true}, {"300", 300 * time.Second, true}, {"0", 0, false}, {"-1", 0, false}, {"5m", 0, false}} {
		got, err := requestTimeout(func(string) string { return c.v })
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("CLOUD_RUN_TIMEOUT_SECONDS=%q: %v, %v; want %v (ok %v)", c.v, got, err, c.want, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "CLOUD_RUN_TIMEOUT_SECONDS") {
			t.Errorf("error does not name the variable: %v", err)
		}
	}
}
