//go:build reliability

package killed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/internal/brokertest"
)

// TestMain runs the member role when the test binary is re-executed as a
// member (memberEnv=1), and the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv(memberEnv) == "1" {
		os.Exit(runMember())
	}
	os.Exit(m.Run())
}

// The load of every broker's run: modest, for a shared two-core machine.
const (
	testMessages = 5000
	testKills    = 4
	testMembers  = 3
)

// suffix returns 8 random hex digits, for names of the test's own.
func suffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TestKilledMembersRabbitMQ runs the case on RabbitMQ (quorum group queue):
// a member's connection dies with it and the broker returns what it held at
// once, counting a delivery for each (x-delivery-count), so a run cut off
// by a crash comes back with Attempt one higher.
func TestKilledMembersRabbitMQ(t *testing.T) {
	raw := brokertest.AMQPURL(t)
	topic := "sykill-" + suffix()
	t.Cleanup(func() { deleteExchange(t, raw, topic) })
	runScenario(t, scenario{
		name: "RabbitMQ 3.10 (quorum queue)", url: raw,
		messages: testMessages, kills: testKills, members: testMembers,
		counted: true, prefetch: 2 * memberConcurrency, timeout: 90 * time.Second,
	}, topic, "members")
}

// deleteExchange deletes the topic's exchange (DeleteGroup deletes the
// group's queues).
func deleteExchange(t *testing.T, raw, topic string) {
	conn, err := amqp.Dial(raw)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	if err := ch.ExchangeDelete(topic, false, false); err != nil {
		t.Errorf("cleanup: delete exchange %s: %v", topic, err)
	}
}

// TestKilledMembersNATS runs the case on NATS JetStream, with ack_wait=5s:
// what a killed member held comes back after ack_wait, its delivery counted
// by JetStream, so with Attempt one higher.
func TestKilledMembersNATS(t *testing.T) {
	raw := brokertest.NATSURL(t)
	ns := "sykill" + suffix()
	t.Cleanup(func() { deleteStreams(t, raw, ns) })
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	runScenario(t, scenario{
		name: "NATS 2.9 JetStream (ack_wait 5s)", url: raw + sep + "namespace=" + ns + "&ack_wait=5s",
		messages: testMessages, kills: testKills, members: testMembers,
		counted: true, prefetch: 256, timeout: 90 * time.Second,
	}, "sykill", "members")
}

// deleteStreams deletes every stream of namespace ns (with its consumers).
func deleteStreams(t *testing.T, raw, ns string) {
	u, err := url.Parse(raw)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	u.RawQuery = ""
	nc, err := natsgo.Connect(u.String())
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var del []string
	for n := range names.Name() {
		if strings.HasPrefix(n, ns+"_") || strings.HasPrefix(n, ns+"-") {
			del = append(del, n)
		}
	}
	if err := names.Err(); err != nil {
		t.Errorf("cleanup: list streams: %v", err)
	}
	for _, n := range del {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Errorf("cleanup: delete stream %s: %v", n, err)
		}
	}
}

// TestKilledMembersPubSubEmulator runs the case on the Pub/Sub emulator
// (pstest over gRPC, in this process so that it outlives the members):
// what a killed member held comes back after the ack deadline (10s); the
// emulator's delivery count is not trusted (see "Emulators" in package
// transport/gcppubsub), so Attempt stays 1.
func TestKilledMembersPubSubEmulator(t *testing.T) {
	srv := pstest.NewServerWithAddress("127.0.0.1:0")
	t.Cleanup(func() { _ = srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr) // the members inherit it
	runScenario(t, scenario{
		name: "Pub/Sub emulator (pstest)", url: "gcppubsub://switchyard-killed?streams=2",
		messages: testMessages, kills: testKills, members: testMembers,
		counted: false, prefetch: 0, timeout: 110 * time.Second,
	}, "sykill-"+suffix(), "members")
}
