package redistest

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Monitor counts, from now until the test ends, the commands that clients
// send the server, as MONITOR shows them: those a script runs are left out,
// so that an EVALSHA is one; each command of a pipeline counts one. count
// returns the number so far, every command the server ran before the call
// included: it sends a marker (ECHO, not counted) and waits for MONITOR to
// show it.
func (s *Server) Monitor(t testing.TB) (count func() int64) {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if s.tls != nil {
		conn = tls.Client(conn, s.tls)
	}
	t.Cleanup(func() { conn.Close() })
	r := bufio.NewReader(conn)
	if s.password != "" {
		conn.Write([]byte("AUTH " + s.password + "\r\n"))
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			t.Fatalf("AUTH for MONITOR: %q %v", line, err)
		}
	}
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("MONITOR: %q %v", line, err)
	}
	var n atomic.Int64
	marks := make(chan struct{})
	go func() {
		defer close(marks)
		for {
			// +1733616000.123456 [0 127.0.0.1:40000] "evalsha" ..., or
			// [0 lua] for a script's command.
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			_, rest, ok := strings.Cut(line, " [")
			switch {
			case !ok:
			case strings.Contains(rest, `"echo" "`+monitorMark+`"`):
				marks <- struct{}{}
			case !strings.HasPrefix(rest[strings.IndexByte(rest, ' ')+1:], "lua]"):
				n.Add(1)
			}
		}
	}()
	client := s.Client()
	return func() int64 {
		t.Helper()
		if err := client.Echo(context.Background(), monitorMark).Err(); err != nil {
			t.Fatalf("ECHO for MONITOR: %v", err)
		}
		select {
		case <-marks:
		case <-time.After(time.Minute):
			t.Fatal("MONITOR did not show the marker within a minute")
		}
		return n.Load()
	}
}

// monitorMark is the marker Monitor's count sends.
const monitorMark = "redistest-monitor-mark"
