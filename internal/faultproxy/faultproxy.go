// Package faultproxy is a TCP front for a gRPC backend, such as the
// Firestore emulator, that tests can switch to an outage: while down, every
// new connection is served by a gRPC server that answers every call with
// UNAVAILABLE (which the Firestore client retries a few times, for up to
// about a second, then returns) or not at all until the caller's deadline
// (a hanging backend). Switching closes the connections already open, so
// the client reconnects to the other side.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Mode is what the proxy does with new connections.
type Mode int32

const (
	Up          Mode = iota // forward to the target
	Unavailable             // answer every call with UNAVAILABLE
	Hang                    // answer no call: each waits for its deadline
)

// Proxy forwards connections to its target, or plays an outage.
type Proxy struct {
	ln      net.Listener
	target  string
	mode    atomic.Int32
	unavail *grpc.Server
	handoff *chanListener

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open, both sides; bounded by the client's connections
	wg    sync.WaitGroup
}

// Start listens on a free loopback port and forwards to target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		ln:      ln,
		target:  target,
		handoff: &chanListener{conns: make(chan net.Conn), done: make(chan struct{}), addr: ln.Addr()},
		conns:   make(map[net.Conn]struct{}),
	}
	p.unavail = grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		if Mode(p.mode.Load()) == Hang {
			<-stream.Context().Done()
		}
		return status.Error(codes.Unavailable, "faultproxy: the backend is down")
	}))
	p.wg.Add(2)
	go func() { defer p.wg.Done(); p.unavail.Serve(p.handoff) }()
	go func() { defer p.wg.Done(); p.accept() }()
	return p, nil
}

// Addr is the host:port to point the client at.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set switches new connections to mode, and closes every open connection.
func (p *Proxy) Set(mode Mode) {
	p.mode.Store(int32(mode))
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.handoff.Close()
	p.unavail.Stop()
	p.Set(Unavailable)
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		if Mode(p.mode.Load()) != Up {
			select {
			case p.handoff.conns <- c:
			case <-p.handoff.done:
				c.Close()
				return
			}
			continue
		}
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.forward(c) }()
	}
}

// track records c so that SetDown can close it.
func (p *Proxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = struct{}{}
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
}

// forward copies bytes both ways between c and a new connection to the
// target until either side closes.
func (p *Proxy) forward(c net.Conn) {
	b, err := net.Dial("tcp", p.target)
	if err != nil {
		p.untrack(c)
		return
	}
	p.track(b)
	done := make(chan struct{}, 2)
	go func() { io.Copy(b, c); done <- struct{}{} }()
	go func() { io.Copy(c, b); done <- struct{}{} }()
	<-done
	p.untrack(c, b)
	<-done
}

// chanListener is a net.Listener whose connections are handed to it.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, errors.New("faultproxy: closed")
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
