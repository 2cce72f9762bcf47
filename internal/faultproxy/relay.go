package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// CommitMethod is the gRPC method whose answers LoseCommitAnswers loses:
// every Firestore write, in a transaction or not, is one Commit call.
const CommitMethod = "/google.firestore.v1.Firestore/Commit"

// What the client is told of a commit the backend applied (LoseCommitAnswers)
// or never saw (RefuseCommits).
var (
	errLostAnswer    = status.Error(codes.Unavailable, "faultproxy: the commit was applied and its answer lost")
	errCommitRefused = status.Error(codes.Unavailable, "faultproxy: the commit was not forwarded")
)

// newRelay returns the gRPC server that relays calls to the backend, by
// method name, with their messages as raw bytes: it needs no knowledge of
// the service.
func (p *Proxy) newRelay() (*grpc.Server, *grpc.ClientConn, error) {
	backend, err := grpc.NewClient(p.target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		return nil, nil, err
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(
		func(_ any, ss grpc.ServerStream) error { return p.relayCall(backend, ss) }))
	return srv, backend, nil
}

// relayCall forwards one call to the backend: metadata, messages both ways
// until either side ends, then the backend's headers, trailers and status.
// A Commit taken by LoseCommitAnswers is forwarded whole, so that the
// backend applies it, and answered errLostAnswer instead of its answer.
func (p *Proxy) relayCall(backend *grpc.ClientConn, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	switch mode := Mode(p.mode.Load()); {
	case mode == Unavailable || mode == Hang: // on a connection not yet closed
		return p.down(ss)
	case mode == RefuseCommits && method == CommitMethod:
		return errCommitRefused
	}
	lose := p.takeLoss(method)
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	md, _ := metadata.FromIncomingContext(ss.Context())
	cs, err := backend.NewStream(metadata.NewOutgoingContext(ctx, forwardable(md)),
		&grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return err
	}
	go func() { // the client's messages, then its half-close
		for {
			var m rawMessage
			if err := ss.RecvMsg(&m); err != nil {
				if errors.Is(err, io.EOF) {
					cs.CloseSend()
				} else {
					cancel()
				}
				return
			}
			if cs.SendMsg(&m) != nil {
				return // the backend ended the call: RecvMsg below sees why
			}
		}
	}()
	for sentHeader := false; ; {
		var m rawMessage
		err := cs.RecvMsg(&m)
		if lose {
			if err == nil {
				continue // drain the answer: the call must end at the backend
			}
			p.lost(errors.Is(err, io.EOF))
			return errLostAnswer
		}
		if !sentHeader {
			if h, herr := cs.Header(); herr == nil && len(h) > 0 {
				ss.SendHeader(h)
			}
			sentHeader = true
		}
		if err != nil {
			ss.SetTrailer(cs.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err // the backend's status, as it gave it
		}
		if err := ss.SendMsg(&m); err != nil {
			return err
		}
	}
}

// forwardable is md without the headers that gRPC sets itself.
func forwardable(md metadata.MD) metadata.MD {
	out := metadata.MD{}
	for k, v := range md {
		switch {
		case strings.HasPrefix(k, ":"), strings.HasPrefix(k, "grpc-"),
			k == "content-type", k == "user-agent", k == "te":
			continue
		}
		out[k] = v
	}
	return out
}

// LoseCommitAnswers makes the proxy relay every call, and apply and lose the
// answer of the next n Commit calls (every one while n <= 0): the backend
// applies each, the client is told UNAVAILABLE. After the n-th, the proxy
// is Unavailable for down, if down > 0, and then relays every call
// faithfully (Relay); a Set in between cancels what follows.
func (p *Proxy) LoseCommitAnswers(n int, down time.Duration) { p.LoseAnswers(CommitMethod, n, down) }

// LoseAnswers is LoseCommitAnswers for the calls of another gRPC method,
// such as PublishMethod: each is applied by the backend, and answered
// UNAVAILABLE.
func (p *Proxy) LoseAnswers(method string, n int, down time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lossMethod = method
	p.losses, p.lossesLeft, p.downAfter, p.afterLoss = n <= 0, n, down, false
	p.set(LoseCommitAnswers)
}

// PublishMethod is Pub/Sub's Publish, for LoseAnswers.
const PublishMethod = "/google.pubsub.v1.Publisher/Publish"

// LostCommits is how many commits the backend applied whose answer the
// proxy lost.
func (p *Proxy) LostCommits() int64 { return p.lostApplied.Load() }

// takeLoss reports whether the answer of this call of method is to be
// lost, and counts it.
func (p *Proxy) takeLoss(method string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if Mode(p.mode.Load()) != LoseCommitAnswers || method != p.lossMethod {
		return false
	}
	if p.losses {
		return true
	}
	if p.lossesLeft <= 0 {
		return false
	}
	p.lossesLeft--
	if p.lossesLeft == 0 {
		p.mode.Store(int32(Relay)) // no need to close connections
		if p.downAfter > 0 {
			p.afterLoss = true
		}
	}
	return true
}

// lost counts a lost answer, and starts the outage that follows the last
// one, if any: at once for the calls that come next (the client may resend
// the commit within a millisecond), and for the open connections once the
// lost answer is on its way.
func (p *Proxy) lost(applied bool) {
	if applied {
		p.lostApplied.Add(1)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.afterLoss {
		return
	}
	p.afterLoss = false
	p.gen++
	p.mode.Store(int32(Unavailable))
	gen := p.gen
	time.AfterFunc(10*time.Millisecond, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.gen == gen {
			p.closeConns()
		}
	})
	time.AfterFunc(p.downAfter, func() { p.setIf(gen, Relay) })
}

// rawMessage is a gRPC message as bytes, which the relay passes unread.
type rawMessage struct{ b []byte }

// rawCodec is a codec of rawMessages, under the name "proto" so that both
// ends see the content type they expect.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(*rawMessage)
	if !ok {
		return nil, fmt.Errorf("faultproxy: cannot marshal %T", v)
	}
	return m.b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("faultproxy: cannot unmarshal into %T", v)
	}
	m.b = append(m.b[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
