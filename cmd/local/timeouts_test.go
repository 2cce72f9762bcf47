package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/testkit"
)

// TestLocalCutsSlowUploads: a request whose body stops halfway is answered
// and its connection closed once LOCAL_READ_BODY_TIMEOUT has passed from
// the handler's first read, not held as long as the client likes; and a
// request whose body arrived in time is not cut off by that deadline when
// its handler runs longer (here, a secret scanning report waiting a second
// for GitHub's keys: 401, not the 503 of an ended context).
func TestLocalCutsSlowUploads(t *testing.T) {
	gh := testkit.NewGitHub(t, "k1")
	port, _ := startLocal(t, cleanEnv("LOCAL_READ_BODY_TIMEOUT=300ms", "GITHUB_SECRET_SCANNING_KEYS_URL="+gh.URL))

	conn, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{\"token\":", keygate.SecretScanningPath)
	// The deadline only keeps a failing test from hanging; the server
	// answers long before it.
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the half-sent body is still being waited for after 20s")
	}
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400 (the report could not be read)", resp.StatusCode)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("cut off after %v, before the 300ms deadline", d)
	}
	if n, err := io.Copy(io.Discard, br); err != nil || n != 0 {
		t.Errorf("after the answer: %d bytes, %v; want the connection closed", n, err)
	}

	body := `[]`
	r, _ := http.NewRequest("POST", "http://127.0.0.1:"+port+keygate.SecretScanningPath, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Github-Public-Key-Identifier", "new")
	r.Header.Set("Github-Public-Key-Signature", gh.Sign(t, "k1", []byte(body)))
	arrived, release := gh.Hold(t)
	type answer struct {
		resp *http.Response
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.DefaultClient.Do(r)
		answered <- answer{resp, err}
	}()
	<-arrived
	time.Sleep(time.Second) // the handler waits past the body deadline
	release()
	a := <-answered
	if a.err != nil {
		t.Fatal(a.err)
	}
	resp = a.resp
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "unknown_key_identifier") {
		t.Errorf("a report whose handler outlasts the body deadline: %d %s, want 401 unknown_key_identifier", resp.StatusCode, b)
	}
}
