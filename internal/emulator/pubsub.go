package emulator

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/keygate/keygate/internal/testrun"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The Pub/Sub emulator (`gcloud beta emulators pubsub start`), in the same
// gcloud as the Firestore one. Unlike it, each test that needs one starts
// its own (a JVM, some seconds): a test freezes it (SIGSTOP) or puts a
// proxy in front of it, which a shared one would inflict on the others.
// It is stopped when the test ends, and by Main's signal handler on
// SIGINT or SIGTERM.
//
// A test without one (no gcloud, or no pubsub-emulator component) skips,
// saying so, unless PubSubRequireEnv is set (.ci/run sets it): then it
// fails.
const PubSubRequireEnv = "KEYGATE_REQUIRE_PUBSUB"

// PubSubServer is a running Pub/Sub emulator.
type PubSubServer struct {
	Host string // host:port, for PUBSUB_EMULATOR_HOST
	pgid int
}

// pubsubs are the process groups of the emulators this process started.
var pubsubs struct {
	sync.Mutex
	groups map[int]bool
}

// PubSub starts a Pub/Sub emulator of the test's own, and stops it when the
// test ends.
func PubSub(t testing.TB) *PubSubServer {
	t.Helper()
	skip := func(why string) {
		t.Helper()
		if os.Getenv(PubSubRequireEnv) != "" {
			t.Fatalf("no Pub/Sub emulator (%s=1): %s", PubSubRequireEnv, why)
		}
		testrun.Skip(t, testrun.PubSub, why+"; set "+PubSubRequireEnv+"=1 to make this a failure")
	}
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		skip("gcloud is not on the PATH")
	}
	releaseOnSignal()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(gcloud, "beta", "emulators", "pubsub", "start", "--host-port="+host, "--quiet")
	cmd.Env = GcloudEnv(t, "PUBSUB_EMULATOR_HOST")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		skip(err.Error())
	}
	s := &PubSubServer{Host: host, pgid: cmd.Process.Pid}
	pubsubs.Lock()
	if pubsubs.groups == nil {
		pubsubs.groups = make(map[int]bool)
	}
	pubsubs.groups[s.pgid] = true
	pubsubs.Unlock()
	t.Cleanup(s.stop)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	if err := waitReady(host, 90*time.Second, exited); err != nil {
		s.stop()
		skip(fmt.Sprintf("on %s: %v; its output:\n%s", host, err, out.String()))
	}
	testrun.Used(t, testrun.PubSub)
	return s
}

// Freeze stops the emulator's processes (SIGSTOP): its port still takes
// connections, and answers nothing, as a Pub/Sub that hangs. Thaw resumes
// them.
func (s *PubSubServer) Freeze() { syscall.Kill(-s.pgid, syscall.SIGSTOP) }

// Thaw resumes a frozen emulator (SIGCONT).
func (s *PubSubServer) Thaw() { syscall.Kill(-s.pgid, syscall.SIGCONT) }

// stop kills the emulator's process group, thawed first so that it can
// die of SIGTERM.
func (s *PubSubServer) stop() {
	pubsubs.Lock()
	defer pubsubs.Unlock()
	if !pubsubs.groups[s.pgid] {
		return
	}
	delete(pubsubs.groups, s.pgid)
	s.Thaw()
	killGroup(s.pgid)
}

// stopPubSubs stops every emulator this process started: on a signal.
func stopPubSubs() {
	pubsubs.Lock()
	defer pubsubs.Unlock()
	for pgid := range pubsubs.groups {
		syscall.Kill(-pgid, syscall.SIGCONT)
		killGroup(pgid)
		delete(pubsubs.groups, pgid)
	}
}

// Message is a message pulled from the emulator.
type Message struct {
	Attributes map[string]string
	Data       []byte
}

// client returns a Pub/Sub client of project on s.
func (s *PubSubServer) client(t testing.TB, project string) *pubsub.Client {
	t.Helper()
	c, err := pubsub.NewClient(t.Context(), project, option.WithEndpoint(s.Host), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Subscribe creates topic in project, and a pull subscription of it whose
// messages Pull returns.
func (s *PubSubServer) Subscribe(t testing.TB, project, topic string) *Subscription {
	t.Helper()
	c := s.client(t, project)
	name := "projects/" + project + "/topics/" + topic
	if _, err := c.TopicAdminClient.CreateTopic(t.Context(), &pubsubpb.Topic{Name: name}); err != nil {
		t.Fatal(err)
	}
	sub := "projects/" + project + "/subscriptions/" + topic + "-test"
	if _, err := c.SubscriptionAdminClient.CreateSubscription(t.Context(), &pubsubpb.Subscription{Name: sub, Topic: name, AckDeadlineSeconds: 60}); err != nil {
		t.Fatal(err)
	}
	return &Subscription{c: c, name: sub}
}

// Subscription is a pull subscription on the emulator.
type Subscription struct {
	c    *pubsub.Client
	name string
}

// Pull returns the messages that arrive within d, acknowledged, once n have
// (n ≤ 0: all that arrive within d).
func (s *Subscription) Pull(t testing.TB, n int, d time.Duration) []Message {
	t.Helper()
	var out []Message
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && (n <= 0 || len(out) < n) {
		ctx, cancel := context.WithDeadline(t.Context(), deadline)
		resp, err := s.c.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{Subscription: s.name, MaxMessages: 100})
		cancel()
		if err != nil {
			if time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			continue
		}
		var acks []string
		for _, m := range resp.ReceivedMessages {
			out = append(out, Message{Attributes: m.Message.Attributes, Data: m.Message.Data})
			acks = append(acks, m.AckId)
		}
		if len(acks) > 0 {
			if err := s.c.SubscriptionAdminClient.Acknowledge(t.Context(), &pubsubpb.AcknowledgeRequest{Subscription: s.name, AckIds: acks}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}
