package gcppubsub_test

import (
	"context"
	"sync"
	"testing"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
	"github.com/switchyard-go/switchyard/transport/transporttest"
)

const (
	testProject  = "switchyard-test"
	testMaxBytes = 64 << 10
)

// emulator is a pstest server reached over gRPC through
// PUBSUB_EMULATOR_HOST, as a user's emulator is, that can refuse publishes
// to chosen topics.
type emulator struct {
	*pstest.Server
	*breaker
}

// startEmulator starts a pstest server for t and points PUBSUB_EMULATOR_HOST
// at it, so that brokers reach it over a real gRPC connection as they would
// reach a user's emulator.
func startEmulator(t testing.TB, opts ...pstest.ServerReactorOption) *emulator {
	t.Helper()
	e := &emulator{breaker: &breaker{}}
	e.Server = pstest.NewServerWithAddress("127.0.0.1:0", append(opts, e.breaker.option())...)
	t.Cleanup(func() { _ = e.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", e.Addr)
	return e
}

// breaker makes publishes to chosen topics fail, as a pstest reactor.
type breaker struct{ broken sync.Map }

func (b *breaker) option() pstest.ServerReactorOption {
	return pstest.ServerReactorOption{FuncName: "Publish", Reactor: b}
}

// breakTopic makes publishing to topic ID id fail until the returned
// function is called.
func (b *breaker) breakTopic(id string) (restore func()) {
	path := "projects/" + testProject + "/topics/" + id
	b.broken.Store(path, true)
	return func() { b.broken.Delete(path) }
}

func (b *breaker) React(req any) (bool, any, error) {
	if r, ok := req.(*pb.PublishRequest); ok {
		if _, bad := b.broken.Load(r.GetTopic()); bad {
			return true, nil, status.Error(codes.FailedPrecondition, "publishing to this topic is broken by the test")
		}
	}
	return false, nil, nil
}

// newBroker opens a broker on the emulator with cfg (ProjectID defaulted)
// and closes it with t.
func newBroker(t testing.TB, cfg gcppubsub.Config, opts ...pubsub.BrokerOption) *pubsub.Client {
	t.Helper()
	if cfg.ProjectID == "" {
		cfg.ProjectID = testProject
	}
	b, err := gcppubsub.New(context.Background(), cfg, append([]pubsub.BrokerOption{pubsub.WithLogger(nil)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// features: pstest delivers a key's next message only after the previous
// one was acked, and the subscriptions are created with ordering. It
// sometimes loses the ack of an original whose copy a closing member
// published back for its group (TestHandBackReachesOnlyItsGroup), and
// delivers the original again after its ack deadline: HandBackRepeats.
var features = transporttest.Features{OrderingByKey: true, HandBackRepeats: true, MaxMessageBytes: testMaxBytes}

// TestConformance runs the suite on pstest, reached as an emulator.
func TestConformance(t *testing.T) {
	e := startEmulator(t)
	transporttest.Run(t, transporttest.Harness{
		NewBroker: func(t *testing.T, opts ...pubsub.BrokerOption) pubsub.Broker {
			return newBroker(t, gcppubsub.Config{MaxMessageBytes: testMaxBytes}, opts...)
		},
		BreakDeadLetters: func(t *testing.T, topic, group string) func() {
			return e.breakTopic(gcppubsub.DeadLetterID(topic, group))
		},
	}, features)
}

// TestConformanceService runs the suite on the fake service, with the
// broker as on Pub/Sub itself (no PUBSUB_EMULATOR_HOST): server-side flow
// control, retry policies, and delivery counts per subscription.
func TestConformanceService(t *testing.T) {
	br := &breaker{}
	f := startFake(t, br.option())
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	transporttest.Run(t, transporttest.Harness{
		NewBroker: func(t *testing.T, opts ...pubsub.BrokerOption) pubsub.Broker {
			return newServiceBroker(t, f, gcppubsub.Config{MaxMessageBytes: testMaxBytes}, opts...)
		},
		BreakDeadLetters: func(t *testing.T, topic, group string) func() {
			return br.breakTopic(gcppubsub.DeadLetterID(topic, group))
		},
	}, features)
	assert.Zero(t, f.called("ListTopicSubscriptions"), "no emulator-only call")
}
