package gcppubsub

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	gpubsub "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// New returns a broker on Google Cloud Pub/Sub for cfg.ProjectID, configured
// by cfg (see Config for the defaults); opts configure the portable layer
// (logger, subscription defaults, middleware, observers). It does not block:
// the gRPC connection is made on first use. It honours PUBSUB_EMULATOR_HOST
// as Google's clients do (plain gRPC to that address, no credentials; see
// "Emulators" in the package documentation); otherwise it finds Application
// Default Credentials, and fails if there are none.
//
// The broker's As gives the underlying client (**pubsub.Client of
// cloud.google.com/go/pubsub/v2) and the ordering keys that failed publishes
// paused (*OrderingKeys).
func New(ctx context.Context, cfg Config, opts ...pubsub.BrokerOption) (*pubsub.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return pubsub.NewClient(ctx, func(ctx context.Context, env driver.Env) (driver.Broker, error) {
		return open(ctx, cfg, env)
	}, opts...)
}

// OpenURL returns a broker for a URL of the form
//
//	gcppubsub://PROJECT_ID[?create=BOOL&ordering=BOOL&max_message_bytes=N&ack_deadline=DURATION&streams=N&dead_letter_retention=DURATION]
//
// whose query parameters set Config fields: create=false sets
// DisableAutoCreate, ordering=false DisableOrdering, and max_message_bytes,
// ack_deadline (for example 30s), streams and dead_letter_retention (for
// example 72h) set MaxMessageBytes, AckDeadline, ReceiveStreams and
// DeadLetterRetention. Unknown parameters, a path, and user information
// (credentials do not belong in the URL) are errors. opts are as New's.
func OpenURL(ctx context.Context, u *url.URL, opts ...pubsub.BrokerOption) (*pubsub.Client, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg, opts...)
}

// broker is the Pub/Sub driver for one project.
type broker struct {
	cfg      Config
	emulator bool // PUBSUB_EMULATOR_HOST was set at New
	client   *gpubsub.Client
	log      *slog.Logger
	admin    *admin
	pubs     *publishers
	adjust   *adjustments
}

var _ driver.Broker = (*broker)(nil)

func open(ctx context.Context, cfg Config, env driver.Env) (*broker, error) {
	client, err := gpubsub.NewClient(ctx, cfg.ProjectID, cfg.ClientOptions...)
	if err != nil {
		return nil, wrapErr(ctx, err, "client for project %s", cfg.ProjectID)
	}
	b := &broker{
		cfg: cfg, client: client, log: env.Logger,
		emulator: onEmulator(),
		adjust:   newAdjustments(),
	}
	b.admin = newAdmin(b)
	b.pubs = newPublishers(b)
	return b, nil
}

// ValidateNames implements driver.Broker: every valid Switchyard name maps to
// a Pub/Sub ID (see "Topic mapping").
func (b *broker) ValidateNames(string, string) error { return nil }

// CheckMessage implements driver.Broker with Pub/Sub's limits (see
// "Errors").
func (b *broker) CheckMessage(m *driver.Message) error { return checkMessage(m, b.cfg.MaxMessageBytes) }

// Ping implements driver.Broker: it asks Pub/Sub about a topic that never
// exists ("sy~ping", outside the names the broker maps to) and reports ready
// when the service answers with the topic or with NotFound or
// PermissionDenied (reachable, credentials accepted; an identity that may
// only publish cannot read topics). Other answers, such as Unavailable or
// Unauthenticated, are errors naming the project; context errors come back
// unwrapped.
func (b *broker) Ping(ctx context.Context) error {
	path := topicPath(b.cfg.ProjectID, pingTopicID)
	_, err := b.client.TopicAdminClient.GetTopic(ctx, &pb.GetTopicRequest{Topic: path})
	switch status.Code(err) {
	case codes.OK, codes.NotFound, codes.PermissionDenied:
		return nil
	}
	return wrapErr(ctx, err, "ping Pub/Sub for project %s", b.cfg.ProjectID)
}

// Close implements driver.Broker: it flushes and stops the topic publishers
// and closes the client. Topics and subscriptions stay on Pub/Sub.
func (b *broker) Close() error {
	b.pubs.stop()
	if err := b.client.Close(); err != nil {
		return fmt.Errorf("gcppubsub: close client of project %s: %w", b.cfg.ProjectID, err)
	}
	return nil
}

// As implements driver.Broker. Targets: **pubsub.Client (of
// cloud.google.com/go/pubsub/v2), the client the broker uses, for features
// Switchyard lacks (closing it breaks the broker); *OrderingKeys, to resume
// ordering keys that failed publishes paused.
func (b *broker) As(i any) bool {
	switch p := i.(type) {
	case **gpubsub.Client:
		*p = b.client
		return true
	case *OrderingKeys:
		*p = orderingKeys{b}
		return true
	}
	return false
}
