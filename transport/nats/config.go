package nats

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"

	natsgo "github.com/nats-io/nats.go"
)

// Storage is where JetStream keeps a stream's messages.
type Storage string

// Storage types.
const (
	// StorageFile keeps messages on disk: they survive a server restart.
	StorageFile Storage = "file"
	// StorageMemory keeps messages in the server's memory: faster, and
	// lost when the server (or, with replicas, every replica) restarts.
	StorageMemory Storage = "memory"
)

// Defaults of Config.
const (
	// DefaultNamespace is the first subject token and the stream-name
	// prefix of every topic.
	DefaultNamespace = "switchyard"
	// DefaultReplicas is the number of copies of each stream: one, for a
	// single server. Use 3 on a cluster.
	DefaultReplicas = 1
	// DefaultStorage keeps messages on disk.
	DefaultStorage = StorageFile
	// DefaultDuplicateWindow is how long a stream remembers message IDs to
	// drop a message published again with the same ID.
	DefaultDuplicateWindow = 2 * time.Minute
	// DefaultAckWait is how long the server waits for a member to settle
	// (or report progress on) a delivered message before it delivers it
	// again.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxAckPending bounds, per group, the messages delivered and
	// not settled, including those waiting out a retry's delay.
	DefaultMaxAckPending = 10000
	// DefaultDeadLetterMax is how many dead letters each group keeps.
	DefaultDeadLetterMax = 10000
	// DefaultPrefetch is how many of a topic's messages a subscription
	// holds at most (fetched and not settled), unless twice its
	// concurrency is more.
	DefaultPrefetch = 256
	// DefaultPublishWindow is how many published messages may await the
	// server's acknowledgement at once, across the broker's Publish calls.
	DefaultPublishWindow = 4096
	// DefaultRequestTimeout bounds Publish (waiting for a reconnection
	// included), CreateGroup, DeleteGroup, Subscribe's set-up, the dead
	// letter admin calls and settlements that wait for the server.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultConnectTimeout bounds each connection attempt.
	DefaultConnectTimeout = 10 * time.Second
	// HeaderRoom is what the default MaxMessageBytes leaves below the
	// server's max_payload, so that any message Publish accepts still fits
	// when it travels with dead-letter or redelivery headers.
	HeaderRoom = 4096
)

// maxReplicas is JetStream's limit on stream replicas.
const maxReplicas = 5

// Config configures a broker. The zero value of every field except URL
// means its default.
type Config struct {
	// URL names the servers: nats://HOST[:PORT][,HOST[:PORT]...], or
	// tls://... to require TLS. The port defaults to 4222. User info
	// authenticates: USER:PASSWORD@, or TOKEN@ (a user without password is
	// a token). Query parameters are for OpenURL only; New refuses them.
	// Required. It never appears in errors or logs with its password or
	// token.
	URL string
	// User and Password authenticate with a user and password, unless the
	// URL carries them.
	User, Password string
	// Token authenticates with a token, unless the URL carries one.
	Token string
	// CredsFile is a NATS credentials file (a user JWT and its nkey seed,
	// as nsc or an operator issues them).
	CredsFile string
	// NKeySeedFile is a file holding an nkey seed ("SU..."), for servers
	// that authenticate users by nkey.
	NKeySeedFile string
	// TLSConfig, when not nil, is used for the connection, and TLS is
	// required. Default: TLS only for tls:// URLs (or when the server asks
	// for it), with the system's roots.
	TLSConfig *tls.Config
	// RootCAsFile, CertFile and KeyFile are PEM files: the CAs to trust
	// and the client certificate and key to present, for TLS.
	RootCAsFile, CertFile, KeyFile string
	// Name is the connection name the server shows (for example in
	// connz). Default "switchyard".
	Name string
	// Namespace is the first token of every subject and the prefix of
	// every stream name, so that applications sharing an account stay
	// apart: 1 to 32 ASCII letters and digits. Default DefaultNamespace.
	Namespace string
	// Replicas is the number of copies of the streams the broker creates
	// (1 to 5). Default DefaultReplicas (1); use 3 on a cluster, so that
	// a stream survives the loss of one server and Publish returns only
	// once a majority stored each message.
	Replicas int
	// Storage is the storage of the streams the broker creates. Default
	// DefaultStorage (file).
	Storage Storage
	// MaxAge, when positive, is how long a topic's stream keeps a message.
	// JetStream then removes it even if a group has not settled it yet,
	// silently: leave it 0 (no limit, the default) unless losing old
	// messages is acceptable.
	MaxAge time.Duration
	// MaxBytes and MaxMsgs, when positive, bound a topic's stream. When
	// the stream is full, Publish waits for room (up to RequestTimeout)
	// and then fails; nothing is dropped. Default: no limit but the
	// server's storage.
	MaxBytes, MaxMsgs int64
	// DuplicateWindow is how long a topic's stream remembers message IDs:
	// a message published again with an ID it saw within the window is
	// not stored again, which makes Publish's retries after a lost
	// acknowledgement safe. Default DefaultDuplicateWindow (2m).
	DuplicateWindow time.Duration
	// AckWait is how long the server waits for a member's settlement of a
	// delivered message before delivering it again, counting one attempt.
	// Subscriptions report progress on messages they hold every AckWait/3,
	// so a handler may run longer; only a member that stopped without
	// settling (a crash, a lost connection) is waited for. Default
	// DefaultAckWait (30s).
	AckWait time.Duration
	// MaxAckPending bounds the messages of a group delivered and not
	// settled, across all its members, including messages waiting out a
	// retry's delay; when reached, the server delivers nothing new to the
	// group until some are settled. Default DefaultMaxAckPending (10000).
	MaxAckPending int
	// DeadLetterMax is how many dead letters each group keeps; when full,
	// storing one fails and the message is parked (see pubsub). Default
	// DefaultDeadLetterMax (10000).
	DeadLetterMax int
	// DeadLetterMaxBytes, when positive, bounds the namespace's dead-letter
	// stream as a whole. Default: no limit but the server's storage.
	DeadLetterMaxBytes int64
	// Prefetch is how many of a topic's messages each subscription holds
	// at most, fetched and not yet settled: the larger of Prefetch and
	// twice its WithConcurrency. Fetching ahead lets each pull request
	// carry a batch. What a subscription holds when it closes goes back to
	// the group untouched (see the package documentation); what a member
	// that crashes held comes back after AckWait, counting one attempt.
	// Default DefaultPrefetch (256).
	Prefetch int
	// MaxMessageBytes is the largest message Publish accepts, counted as
	// the NATS message it becomes: payload plus headers (ID, key,
	// metadata). Default the server's max_payload minus HeaderRoom; it
	// cannot be more.
	MaxMessageBytes int
	// PublishWindow is how many published messages may await the server's
	// acknowledgement at once, across all Publish calls of the broker.
	// Default DefaultPublishWindow (4096).
	PublishWindow int
	// RequestTimeout bounds Publish (a wait for a reconnection included),
	// CreateGroup, DeleteGroup, Subscribe's set-up, the dead-letter admin
	// calls and settlements that wait for the server. The caller's context
	// can end them sooner. Default DefaultRequestTimeout (30s).
	RequestTimeout time.Duration
	// ConnectTimeout bounds each connection attempt to a server. Default
	// DefaultConnectTimeout (10s).
	ConnectTimeout time.Duration
	// Options are more nats.go options, applied after the broker's own
	// (for example nats.ReconnectWait). Options that replace the
	// connection's event handlers take the broker's logging away.
	Options []natsgo.Option
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "switchyard"
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.Storage == "" {
		c.Storage = DefaultStorage
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.DeadLetterMax == 0 {
		c.DeadLetterMax = DefaultDeadLetterMax
	}
	if c.Prefetch == 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.PublishWindow == 0 {
		c.PublishWindow = DefaultPublishWindow
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
}

// Validate reports every problem with c at once. Zero values are valid
// (they mean the defaults), except for URL.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("nats: URL is empty"))
	} else if _, err := parseServers(c.URL); err != nil {
		errs = append(errs, err)
	} else if u, _ := url.Parse(c.URL); u.RawQuery != "" {
		errs = append(errs, fmt.Errorf("nats: URL %s has query parameters; only OpenURL reads them", redactURL(c.URL)))
	}
	if c.Namespace != "" && !validNamespace(c.Namespace) {
		errs = append(errs, fmt.Errorf("nats: Namespace %q, want 1 to 32 ASCII letters and digits", c.Namespace))
	}
	if c.Replicas < 0 || c.Replicas > maxReplicas {
		errs = append(errs, fmt.Errorf("nats: Replicas %d out of range 1..%d", c.Replicas, maxReplicas))
	}
	switch c.Storage {
	case "", StorageFile, StorageMemory:
	default:
		errs = append(errs, fmt.Errorf("nats: Storage %q, want %q or %q", c.Storage, StorageFile, StorageMemory))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"MaxAge", c.MaxAge}, {"DuplicateWindow", c.DuplicateWindow}, {"AckWait", c.AckWait},
		{"RequestTimeout", c.RequestTimeout}, {"ConnectTimeout", c.ConnectTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("nats: %s %v is negative", d.name, d.v))
		}
	}
	if c.AckWait > 0 && c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("nats: AckWait %v is under 1s", c.AckWait))
	}
	for _, n := range []struct {
		name string
		v    int64
	}{
		{"MaxBytes", c.MaxBytes}, {"MaxMsgs", c.MaxMsgs}, {"MaxAckPending", int64(c.MaxAckPending)},
		{"DeadLetterMax", int64(c.DeadLetterMax)}, {"DeadLetterMaxBytes", c.DeadLetterMaxBytes},
		{"MaxMessageBytes", int64(c.MaxMessageBytes)}, {"PublishWindow", int64(c.PublishWindow)}, {"Prefetch", int64(c.Prefetch)},
	} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("nats: %s %d is negative", n.name, n.v))
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("nats: CertFile and KeyFile go together"))
	}
	return errors.Join(errs...)
}

// orUnlimited returns n, or -1 (JetStream's "no limit") when n is 0.
func orUnlimited(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}
