package e2e_test

import (
	"bytes"
	"cloud.google.com/go/pubsub/v2/pstest"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// openBroker opens a broker by URL.
var openBroker = transport.Open

// env is one test's broker and namespace.
type env struct {
	url string
	// ns isolates the test's topics on a shared broker.
	ns  events.Namespace
	log *slog.Logger
	// fast are subscribe options that keep retries short.
	fast []pubsub.SubscribeOption
	// opts are given to every broker handle (otelpubsub.Instrument, say).
	opts []pubsub.BrokerOption
}

// forEachTransport runs test on mem://, on RabbitMQ, on NATS JetStream, and
// on Google Cloud Pub/Sub's emulator: the one PUBSUB_EMULATOR_HOST names,
// or else pstest served in-process. What a test creates on a broker is
// deleted when it ends (cleanupTopology).
func forEachTransport(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("mem", func(t *testing.T) {
		test(t, newEnv(t, "mem://e2e-"+pubsub.NewID()[:12]))
	})
	t.Run("amqp", func(t *testing.T) {
		url := brokertest.AMQPURL(t)
		e := newEnv(t, url)
		t.Cleanup(func() { cleanupTopology(t, e) }) // runs after the services stopped
		test(t, e)
	})
	t.Run("nats", func(t *testing.T) {
		// A NATS namespace of the test's own (stream names NS_<topic>),
		// so that cleanup removes its streams and nothing else. Prefetch
		// 4: the exporters handle one job at a time, and with the default
		// (256) one of them could fetch every request of a test while the
		// other's pull request was being renewed (seen once in 60 runs of
		// TestExportAsync), which tests of work sharing cannot tell from a
		// member left out.
		url := brokertest.NATSURL(t) + "?prefetch=4&namespace=e2e" + strings.ToLower(pubsub.NewID()[:10])
		e := newEnv(t, url)
		t.Cleanup(func() { cleanupTopology(t, e) })
		test(t, e)
	})
	t.Run("gcppubsub", func(t *testing.T) {
		host := emulatorHost(t)
		external := host != ""
		if !external {
			// No emulator named: serve pstest in-process, reached over gRPC
			// through PUBSUB_EMULATOR_HOST as any emulator is.
			srv := pstest.NewServer()
			t.Cleanup(func() { _ = srv.Close() })
			host = srv.Addr
			t.Setenv("PUBSUB_EMULATOR_HOST", host)
		}
		brokertest.Reachable(t, host, "the Pub/Sub emulator", "start it: go run ./examples/cmd/pubsub-emulator -port 8085")
		e := newEnv(t, "gcppubsub://switchyard-e2e")
		if external {
			t.Cleanup(func() { cleanupTopology(t, e) })
		}
		test(t, e)
	})
}

// emulatorHost returns the Pub/Sub emulator's address (PUBSUB_EMULATOR_HOST),
// empty when there is none; a variable so that a local file can start one.
var emulatorHost = func(t *testing.T) string { return os.Getenv("PUBSUB_EMULATOR_HOST") }

// balancesMembers reports whether the broker spreads a group's messages over
// its members. pstest does not: it sends everything to the stream that
// connected first (Google's service balances), so tests of work sharing only
// check the totals there.
func (e *env) balancesMembers() bool { return !strings.HasPrefix(e.url, "gcppubsub:") }

func newEnv(t *testing.T, url string) *env {
	e := &env{
		url:  url,
		ns:   events.Namespace("e2e-" + pubsub.NewID()[:10] + "."),
		log:  testLogger(),
		fast: []pubsub.SubscribeOption{pubsub.WithBackoff(20*time.Millisecond, 100*time.Millisecond)},
	}
	return e
}

// testLogger logs to stderr when E2E_LOG is set, and nowhere otherwise.
func testLogger() *slog.Logger {
	if os.Getenv("E2E_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// broker opens a new handle on the test's broker, closed when t ends; each
// service gets its own, as a process of its own would.
func (e *env) broker(t *testing.T) pubsub.Broker {
	t.Helper()
	b, err := openBroker(context.Background(), e.url, append([]pubsub.BrokerOption{pubsub.WithLogger(e.log)}, e.opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// start runs a service's Run on a new loopback listener until t ends, waits
// until it answers /healthz, and returns its base URL.
func start(t *testing.T, name string, run func(ctx context.Context, ln net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Run returned %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s: Run did not return within 30s of cancel", name)
		}
	})
	base := "http://" + ln.Addr().String()
	waitFor(t, 15*time.Second, name+" ready", func() error {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("exited: %v", err)
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz %s", resp.Status)
		}
		return nil
	})
	return base
}

// waitFor polls cond until it returns nil, failing t with cond's last error
// after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v for %s: %v", d, what, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// call sends a request and returns the status and body.
func call(t *testing.T, method, url string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// getJSON GETs url and decodes a 200 answer into v.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// flakyBroker is a Broker whose Publish fails while down is set: the broker
// being unreachable, as the API sees it.
type flakyBroker struct {
	pubsub.Broker
	mu   sync.Mutex
	down bool
	// refused counts the publishes refused.
	refused int
}

var errBrokerDown = errors.New("test: broker unreachable")

func (f *flakyBroker) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *flakyBroker) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	f.mu.Lock()
	if f.down {
		f.refused++
		f.mu.Unlock()
		return errBrokerDown
	}
	f.mu.Unlock()
	return f.Broker.Publish(ctx, topic, msgs...)
}

func (f *flakyBroker) CreateGroup(ctx context.Context, topic, group string) error {
	return f.Broker.(pubsub.GroupCreator).CreateGroup(ctx, topic, group)
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
func jsonMarshal(v any) ([]byte, error)   { return json.Marshal(v) }
