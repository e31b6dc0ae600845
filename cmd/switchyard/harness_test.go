package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// The commands are tested end to end: on mem:// in this process (the
// in-memory broker lives in one process, so the test and the command must
// share it), and as the built binary, run as a process, against RabbitMQ,
// NATS and the Pub/Sub emulator, and on mem:// for what needs no shared
// state (exit codes, usage, signals).

// waitTime bounds every wait for a command's output or a delivery.
const waitTime = 15 * time.Second

// result is what a command did.
type result struct {
	code           int
	stdout, stderr string
}

// target is a broker and a way to run the commands against it.
type target struct {
	name string
	url  string
	// process: run the built binary; otherwise run in this process.
	process bool
	// env is added to the binary's environment.
	env []string
	// shared: the test process sees the broker the commands use.
	shared bool
}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
	binaryDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binaryDir != "" {
		_ = os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}

// switchyardBinary builds cmd/switchyard once per test run and returns its path.
func switchyardBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		binaryDir, binaryErr = os.MkdirTemp("", "switchyard-cli-test-")
		if binaryErr != nil {
			return
		}
		binaryPath = filepath.Join(binaryDir, "switchyard")
		out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			binaryErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	require.NoError(t, binaryErr)
	return binaryPath
}

// memTarget runs the commands in this process on a hub of their own.
func memTarget() *target {
	return &target{name: "mem", url: "mem://cli-" + pubsub.NewID()[:12], shared: true}
}

// memProcess runs the binary on mem://: each invocation has its own broker.
func memProcess() *target {
	return &target{name: "mem-process", url: "mem://", process: true}
}

// amqpTarget runs the binary against RabbitMQ (skipped locally when it is
// unreachable or this build has no amqp:// transport; failing under CI).
func amqpTarget(t *testing.T) *target {
	url := brokertest.AMQPURL(t)
	requireScheme(t, url)
	return &target{name: "amqp", url: url, process: true, shared: true}
}

// pubsubTarget runs the binary against the Pub/Sub emulator that
// PUBSUB_EMULATOR_HOST names, or else pstest served by this test over gRPC.
func pubsubTarget(t *testing.T) *target {
	host := os.Getenv("PUBSUB_EMULATOR_HOST")
	if host == "" {
		srv := pstest.NewServer()
		t.Cleanup(func() { _ = srv.Close() })
		host = srv.Addr
		t.Setenv("PUBSUB_EMULATOR_HOST", host)
	}
	brokertest.Reachable(t, host, "the Pub/Sub emulator", "start it: go run ./examples/cmd/pubsub-emulator -port 8085")
	url := "gcppubsub://switchyard-cli-test"
	requireScheme(t, url)
	return &target{name: "gcppubsub", url: url, process: true, shared: true, env: []string{"PUBSUB_EMULATOR_HOST=" + host}}
}

// defaultNATSURL is the NATS server tests use when SWITCHYARD_NATS_URL is
// not set.
const defaultNATSURL = "nats://127.0.0.1:4222"

// natsTarget runs the binary against NATS (SWITCHYARD_NATS_URL, default
// defaultNATSURL; skipped locally when it is unreachable, failing under
// CI), in a namespace of its own whose streams are deleted when t ends.
func natsTarget(t *testing.T) *target {
	raw := os.Getenv("SWITCHYARD_NATS_URL")
	if raw == "" {
		raw = defaultNATSURL
	}
	u, err := url.Parse(raw)
	require.NoError(t, err, "SWITCHYARD_NATS_URL")
	host := strings.Split(u.Host, ",")[0]
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "4222")
	}
	brokertest.Reachable(t, host, "NATS", "start nats-server with JetStream (nats-server -js) or set SWITCHYARD_NATS_URL")
	ns := "clitest" + pubsub.NewID()[:8]
	q := u.Query()
	q.Set("namespace", ns)
	u.RawQuery = q.Encode()
	requireScheme(t, u.String())
	t.Cleanup(func() {
		deleteNATSStreams(t, raw, func(name string) bool { return strings.HasPrefix(name, ns+"_") || name == ns+"-deadletters" })
	})
	return &target{name: "nats", url: u.String(), process: true, shared: true}
}

// deleteNATSStreams deletes the streams of the server at raw whose names
// match. Errors are logged.
func deleteNATSStreams(t *testing.T, raw string, match func(name string) bool) {
	u, err := url.Parse(raw)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	u.RawQuery = ""
	nc, err := natsgo.Connect(u.String())
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var del []string
	names := js.StreamNames(ctx)
	for n := range names.Name() {
		if match(n) {
			del = append(del, n)
		}
	}
	if err := names.Err(); err != nil {
		t.Logf("cleanup: list streams: %v", err)
	}
	for _, n := range del {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Logf("cleanup: delete stream %s: %v", n, err)
		}
	}
}

// requireScheme skips t (fails it under CI) when transport.Open does not
// know url's scheme in this build.
func requireScheme(t *testing.T, url string) {
	t.Helper()
	b, err := transport.Open(context.Background(), url, pubsub.WithLogger(nil))
	if errors.Is(err, transport.ErrUnknownScheme) {
		if brokertest.InCI() {
			t.Fatalf("transport.Open does not know %s under CI=true: %v", showURL(url), err)
		}
		t.Skipf("transport.Open does not know this scheme in this build: %v", err)
	}
	require.NoError(t, err)
	require.NoError(t, b.Close())
}

// forEachBroker runs test on mem:// in this process, then with the binary
// on RabbitMQ, NATS and the Pub/Sub emulator.
func forEachBroker(t *testing.T, test func(t *testing.T, tg *target)) {
	t.Run("mem", func(t *testing.T) { test(t, memTarget()) })
	forEachNetworked(t, test)
}

// forEachNetworked runs test with the binary on RabbitMQ, NATS and the
// Pub/Sub emulator.
func forEachNetworked(t *testing.T, test func(t *testing.T, tg *target)) {
	t.Run("amqp", func(t *testing.T) { test(t, amqpTarget(t)) })
	t.Run("nats", func(t *testing.T) { test(t, natsTarget(t)) })
	t.Run("gcppubsub", func(t *testing.T) { test(t, pubsubTarget(t)) })
}

// args puts --url before the command's arguments.
func (tg *target) args(args []string) []string {
	return append([]string{"--url", tg.url}, args...)
}

// run runs one command to its end.
func (tg *target) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	bg := tg.start(t, stdin, args...)
	return bg.wait(t)
}

// running is a command in progress.
type running struct {
	stdout, stderr *syncBuffer
	interrupt      func()
	done           chan result
}

// start starts a command in the background.
func (tg *target) start(t *testing.T, stdin string, args ...string) *running {
	t.Helper()
	r := &running{stdout: newSyncBuffer(), stderr: newSyncBuffer(), done: make(chan result, 1)}
	if !tg.process {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		r.interrupt = cancel // what main's signal.NotifyContext does on SIGINT
		go func() {
			code := run(ctx, tg.args(args), strings.NewReader(stdin), r.stdout, r.stderr, func(string) string { return "" })
			r.done <- result{code: code, stdout: r.stdout.String(), stderr: r.stderr.String()}
		}()
		return r
	}
	cmd := exec.Command(switchyardBinary(t), tg.args(args)...)
	cmd.Env = append(os.Environ(), tg.env...)
	cmd.Env = append(cmd.Env, "PUBSUB_URL=") // only --url counts
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = r.stdout, r.stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	r.interrupt = func() { _ = cmd.Process.Signal(syscall.SIGINT) }
	go func() {
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		r.done <- result{code: code, stdout: r.stdout.String(), stderr: serverWarning.ReplaceAllString(r.stderr.String(), "")}
	}()
	return r
}

// serverWarning matches the warnings the NATS transport logs on connecting
// to a NATS Server before 2.10 or 2.10.16, which the commands print (they
// print the broker's warnings): they depend on the server, not on the
// command, so results leave them out.
var serverWarning = regexp.MustCompile(`(?m)^time=\S+ level=WARN msg="nats: NATS Server before 2\.10[ .][^\n]*\n`)

// wait waits for the command to end.
func (r *running) wait(t *testing.T) result {
	t.Helper()
	select {
	case res := <-r.done:
		return res
	case <-time.After(waitTime):
		r.interrupt()
		t.Fatalf("command still running after %v; stdout %q, stderr %q", waitTime, r.stdout.String(), r.stderr.String())
		return result{}
	}
}

// syncBuffer is an output that tests can watch while a command writes to it.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // a token after each write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.buf.Write(p)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor waits until the output contains substr and returns it.
func (s *syncBuffer) waitFor(t *testing.T, substr string) string {
	t.Helper()
	deadline := time.After(waitTime)
	for {
		if out := s.String(); strings.Contains(out, substr) {
			return out
		}
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("no %q in the output after %v: %q", substr, waitTime, s.String())
		}
	}
}

var _ io.Writer = (*syncBuffer)(nil)

// openBroker opens the target's broker in the test process (only for
// shared targets); it is closed with t.
func (tg *target) openBroker(t *testing.T) broker {
	t.Helper()
	require.True(t, tg.shared, "the test cannot see the broker of %s", tg.name)
	b, err := transport.Open(context.Background(), tg.url, pubsub.WithLogger(nil), pubsub.WithDrainTimeout(5*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b.(broker)
}

// cleanup deletes, when t ends, the groups of topic the test made, then
// the topic itself where the broker has an object for it (pubsub cannot
// delete topics: see deleteTopic).
func (tg *target) cleanup(t *testing.T, topic string, groups ...string) {
	t.Cleanup(func() {
		if !tg.shared {
			return
		}
		b, err := transport.Open(context.Background(), tg.url, pubsub.WithLogger(nil))
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer b.Close()
		for _, g := range groups {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := b.(broker).DeleteGroup(ctx, topic, g); err != nil && !errors.Is(err, pubsub.ErrNotFound) {
				t.Logf("cleanup: delete group %s of %s: %v", g, topic, err)
			}
			cancel()
		}
		deleteTopic(t, tg.url, b, topic)
	})
}

// deleteTopic deletes the broker object of topic, as each transport's
// package documentation ("Topic mapping") names it: on RabbitMQ the fanout
// exchange named after the topic; on NATS the stream NS_<topic encoded>
// (namespace NS from the URL, "switchyard" by default); on Pub/Sub the
// topic of the same ID (test topics need no ID mapping), through b or, when
// b is nil, a broker of its own. Errors are logged.
func deleteTopic(t *testing.T, rawURL string, b pubsub.Broker, topic string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	switch u.Scheme {
	case "amqp", "amqps":
		conn, err := amqp.Dial(rawURL)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		if err := ch.ExchangeDelete(topic, false, false); err != nil {
			t.Logf("cleanup: delete exchange %s: %v", topic, err)
		}
		_ = ch.Close()
	case "nats":
		ns := u.Query().Get("namespace")
		if ns == "" {
			ns = "switchyard"
		}
		enc := strings.NewReplacer("_", "-_", "-", "--", ".", "_").Replace(topic)
		deleteNATSStreams(t, rawURL, func(name string) bool { return name == ns+"_"+enc })
	case "gcppubsub":
		if b == nil {
			ob, err := transport.Open(context.Background(), rawURL, pubsub.WithLogger(nil))
			if err != nil {
				t.Logf("cleanup: %v", err)
				return
			}
			defer ob.Close()
			b = ob
		}
		var c *gpubsub.Client
		if as, ok := b.(interface{ As(any) bool }); !ok || !as.As(&c) {
			t.Logf("cleanup: no Pub/Sub client for %s", rawURL)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		path := "projects/" + u.Host + "/topics/" + topic
		if err := c.TopicAdminClient.DeleteTopic(ctx, &pb.DeleteTopicRequest{Topic: path}); err != nil {
			t.Logf("cleanup: delete topic %s: %v", path, err)
		}
	}
}

// newTopic returns a topic name of the test's own.
func newTopic() string { return "cli-" + pubsub.NewID()[:12] }

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// requireOK requires that the command succeeded.
func requireOK(t *testing.T, r result) {
	t.Helper()
	require.Equal(t, 0, r.code, "exit code; stdout %q, stderr %q", r.stdout, r.stderr)
}

// recv waits for a value on ch.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTime):
		t.Fatalf("nothing received within %v", waitTime)
		panic("unreachable")
	}
}

// quiet checks that nothing more arrives on ch for a short while.
func quiet[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	case <-time.After(300 * time.Millisecond):
	}
}
