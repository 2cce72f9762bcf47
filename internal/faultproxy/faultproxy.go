// Package faultproxy is a TCP front for a gRPC backend, such as the
// Firestore emulator, that tests can switch to an outage: while down, every
// new connection is served by a gRPC server that answers every call with
// UNAVAILABLE (which the Firestore client retries a few times, for up to
// about a second, then returns) or not at all until the caller's deadline
// (a hanging backend). Switching closes the connections already open, so
// the client reconnects to the other side.
//
// It can also lose the answer of a write that was applied
// (LoseCommitAnswers): it then relays each gRPC call to the backend by
// method name, and a Commit, once the backend has answered it, is answered
// UNAVAILABLE instead. What the client does next decides what the store
// sees; in cloud.google.com/go/firestore v1.29.2:
//
//   - Every write is one Commit call (apiv1 Client.Commit), outside a
//     transaction (DocumentRef.Create, Set, Update, Delete, WriteBatch,
//     BulkWriter's batches) as well as at the end of RunTransaction.
//   - Commit's default call options retry RESOURCE_EXHAUSTED and
//     UNAVAILABLE, with backoff from 100 ms (x1.3, at most 60 s), until the
//     call's 60 s timeout or the context's deadline, whichever is first.
//     It resends the very same request. So a lost answer is not an error
//     the caller sees: it sees the answer to the resent Commit.
//   - Outside a transaction, the resent Commit is a second write: a Create
//     (precondition: does not exist) fails ALREADY_EXISTS, a Delete with
//     the Exists precondition NOT_FOUND; a Set applies again (with
//     Increment: counts twice). A write the caller was told failed with
//     "already exists" is then its own.
//   - In RunTransaction, the resent Commit names a transaction that is
//     committed already: the emulator answers INVALID_ARGUMENT
//     ("Transaction is invalid or closed."), which RunTransaction returns
//     as it is (it retries f only on ABORTED, and does not roll back a
//     transaction that committed). The writes are applied, and the caller
//     is told it failed with an error that is neither a deadline nor
//     UNAVAILABLE. Were the resent Commit answered ABORTED instead,
//     RunTransaction would run f again on the applied state. A lost answer
//     of a commit the backend refused (ABORTED, under contention) ends the
//     same way: INVALID_ARGUMENT, nothing applied, and f not run again.
//   - When every Commit answer is lost, the retries go on until the
//     context ends: the caller gets the context's error (or
//     DEADLINE_EXCEEDED), the write applied.
//   - After a failed commit, RunTransaction rolls back before it returns,
//     with a context of its own (5 s), not the caller's: with the backend
//     down after the lost answer, a transaction with a 1 s deadline
//     returned after 6 s. apikey/firestorestore's runTransaction returns at
//     the deadline.
//   - Reads (BatchGetDocuments, RunQuery) pass unchanged, and
//     BeginTransaction and Rollback are relayed faithfully.
//
// So "the write failed" from the client proves nothing but that the
// answer did not say so; apikey/store's ConfirmWrites reads back.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Mode is what the proxy does with new connections.
type Mode int32

const (
	Up          Mode = iota // forward to the target, byte for byte
	Unavailable             // answer every call with UNAVAILABLE
	Hang                    // answer no call: each waits for its deadline
	Relay                   // forward each gRPC call to the target, by method
	// LoseCommitAnswers relays every call, but answers each Commit (every
	// write), once the target has applied it, with UNAVAILABLE. Set it with
	// Proxy.LoseCommitAnswers to lose only the next n.
	LoseCommitAnswers
	// RefuseCommits relays every call but Commit, which it answers
	// UNAVAILABLE without forwarding it: writes fail at their commit, and
	// are not applied, while reads pass.
	RefuseCommits
)

// Proxy forwards connections to its target, or plays an outage.
type Proxy struct {
	ln      net.Listener
	target  string
	mode    atomic.Int32
	unavail *grpc.Server
	handoff *chanListener // to unavail
	relay   *grpc.Server
	relayed *chanListener // to relay
	backend *grpc.ClientConn

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open, both sides; bounded by the client's connections
	gen   int64                 // of the last Set, so that a timed switch does not undo a later one
	// LoseCommitAnswers' state: every commit (losses), or the next
	// lossesLeft, then Unavailable for downAfter (afterLoss: due).
	losses      bool
	lossMethod  string // whose answers are lost: CommitMethod unless LoseAnswers says
	lossesLeft  int
	downAfter   time.Duration
	afterLoss   bool
	lostApplied atomic.Int64
	wg          sync.WaitGroup
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
		handoff: newChanListener(ln.Addr()),
		relayed: newChanListener(ln.Addr()),
		conns:   make(map[net.Conn]struct{}),
	}
	if p.relay, p.backend, err = p.newRelay(); err != nil {
		ln.Close()
		return nil, err
	}
	p.unavail = grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		return p.down(stream)
	}))
	p.wg.Add(3)
	go func() { defer p.wg.Done(); p.unavail.Serve(p.handoff) }()
	go func() { defer p.wg.Done(); p.relay.Serve(p.relayed) }()
	go func() { defer p.wg.Done(); p.accept() }()
	return p, nil
}

// down answers a call in an outage: UNAVAILABLE, or, in Hang, nothing
// until the caller gives up.
func (p *Proxy) down(stream grpc.ServerStream) error {
	if Mode(p.mode.Load()) == Hang {
		<-stream.Context().Done()
	}
	return status.Error(codes.Unavailable, "faultproxy: the backend is down")
}

// Addr is the host:port to point the client at.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set switches new connections to mode, and closes every open connection.
// LoseCommitAnswers set here loses every commit's answer.
func (p *Proxy) Set(mode Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if mode == LoseCommitAnswers {
		p.lossMethod, p.losses, p.afterLoss = CommitMethod, true, false
	}
	p.set(mode)
}

// setIf is Set, unless the proxy was Set since generation gen.
func (p *Proxy) setIf(gen int64, mode Mode) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen != gen {
		return false
	}
	p.set(mode)
	return true
}

// set is Set; p.mu is held.
func (p *Proxy) set(mode Mode) {
	p.gen++
	p.mode.Store(int32(mode))
	p.closeConns()
}

// closeConns closes every open connection; p.mu is held.
func (p *Proxy) closeConns() {
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.handoff.Close()
	p.relayed.Close()
	p.unavail.Stop()
	p.relay.Stop()
	p.Set(Unavailable)
	p.backend.Close()
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
		var to *chanListener
		switch Mode(p.mode.Load()) {
		case Up:
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.forward(c) }()
			continue
		case Relay, LoseCommitAnswers, RefuseCommits:
			to = p.relayed
		default:
			to = p.handoff
		}
		select {
		case to.conns <- c:
		case <-to.done:
			c.Close()
			return
		}
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

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{conns: make(chan net.Conn), done: make(chan struct{}), addr: addr}
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
