package rabbitmq

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-go/switchyard/internal/redact"
)

// QueueType is the RabbitMQ queue type of the group and retry queues a
// broker declares.
type QueueType string

// Queue types.
const (
	// QueueQuorum is a replicated, durable queue (RabbitMQ 3.8+). It counts
	// the deliveries of each message (x-delivery-count), so the Attempt of
	// a message whose consumer crashed goes on exactly.
	QueueQuorum QueueType = "quorum"
	// QueueClassic is RabbitMQ's original queue type: durable on one node,
	// and cheaper (no file descriptor while idle). Before RabbitMQ 4.3 a
	// crash redelivery is only flagged, not counted (see the package
	// documentation).
	QueueClassic QueueType = "classic"
)

// Defaults of Config.
const (
	// DefaultQueueType is the type of the group and retry queues a broker
	// declares.
	DefaultQueueType = QueueQuorum
	// DefaultConfirmTimeout bounds how long Publish, CreateGroup, Subscribe's
	// set-up, the dead-letter calls and a delivery's settlement wait for
	// the broker, reconnection included.
	DefaultConfirmTimeout = 30 * time.Second
	// DefaultConnectTimeout bounds the connection set-up of New and OpenURL
	// (TCP, TLS and AMQP handshakes), and of each reconnection attempt.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultMaxMessageBytes is RabbitMQ's default max_message_size (128 MiB).
	DefaultMaxMessageBytes = 128 << 20
	// DefaultDeadLetterLimit is how many dead letters a group keeps: the
	// x-max-length of its dead-letter queue.
	DefaultDeadLetterLimit = 100_000
)

// maxPrefetch is the largest prefetch count AMQP 0-9-1 can carry (a short).
const maxPrefetch = 1<<16 - 1

// Config configures a RabbitMQ broker (see New). The zero value of every
// field except URL means its default. Logs go to the logger given with
// pubsub.WithLogger.
type Config struct {
	// URL is the AMQP URI of the broker:
	// amqp://USER:PASSWORD@HOST:PORT/VHOST or amqps://... (see
	// amqp091.ParseURI; percent-encode reserved characters in the user and
	// password). Its query parameters are amqp091's: heartbeat, channel_max,
	// auth_mechanism, and for amqps cacertfile, certfile, keyfile and
	// server_name_indication. Required. It never appears in errors or logs
	// with its password.
	//
	// The host part may list the nodes of a cluster, separated by commas:
	// amqp://USER:PASSWORD@HOST1:PORT1,HOST2:PORT2,HOST3:PORT3/VHOST. The
	// client connects to the first node that accepts it, trying them in
	// order, and when a connection is lost it tries the next node first
	// (see the package documentation, "Cluster nodes"). Every node shares
	// the user, password, virtual host and query parameters; IPv6 literals
	// may only be a single host.
	URL string
	// TLSConfig, when not nil, is used for amqps:// URLs instead of the one
	// amqp091 builds from the URL's parameters (system roots by default).
	TLSConfig *tls.Config
	// Prefetch is how many unacknowledged messages RabbitMQ sends ahead to
	// each Subscription (consumer prefetch, basic.qos). Default 0: twice the
	// subscription's WithConcurrency, which keeps every handler busy while
	// the next message travels, and keeps small what a member holds when it
	// stops or loses its connection. A value below the concurrency is
	// raised to it; at most 65535. Higher values help only when the network
	// to the broker is slow.
	Prefetch int
	// QueueType is the type of the group queues and retry queues the
	// broker declares. Default DefaultQueueType (quorum). A group queue that
	// already exists with another type makes Subscribe and CreateGroup fail
	// with RabbitMQ's PRECONDITION_FAILED error. Dead-letter queues are
	// always classic queues (see the package documentation).
	QueueType QueueType
	// ConfirmTimeout bounds how long Publish waits for the broker to confirm
	// its messages, counted from the call and including any wait for a
	// reconnection; CreateGroup, DeleteGroup, Subscribe's set-up, the
	// dead-letter admin calls, a delivery's settlement and a subscription's
	// hand-back at Close are bounded the same way. The caller's context can
	// end them sooner. Default DefaultConfirmTimeout (30s).
	ConfirmTimeout time.Duration
	// ConnectTimeout bounds each connection attempt: the TCP, TLS and AMQP
	// handshakes of New and OpenURL, and of each reconnection, to each node
	// of a host list in turn. Default
	// DefaultConnectTimeout (10s).
	ConnectTimeout time.Duration
	// MaxMessageBytes is the largest message (pubsub.Message.Size) Publish
	// accepts; larger ones fail with pubsub.ErrMessageTooLarge before
	// anything is sent. Default DefaultMaxMessageBytes (128 MiB, RabbitMQ's
	// default max_message_size); set it to the broker's max_message_size if
	// that is lower, or the broker closes the publishing channel instead.
	MaxMessageBytes int
	// DeadLetterLimit is how many dead letters each group keeps (the
	// x-max-length of its dead-letter queue, set when the queue is created:
	// a group created earlier keeps its limit). When they are full, storing
	// a dead letter fails and the delivery loop parks the message until
	// ReplayDeadLetters or PurgeDeadLetters makes room. Default
	// DefaultDeadLetterLimit (100,000).
	DeadLetterLimit int
}

func (c *Config) setDefaults() {
	if c.QueueType == "" {
		c.QueueType = DefaultQueueType
	}
	if c.ConfirmTimeout == 0 {
		c.ConfirmTimeout = DefaultConfirmTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.DeadLetterLimit == 0 {
		c.DeadLetterLimit = DefaultDeadLetterLimit
	}
}

// Validate reports every problem with c at once. Zero values are valid (they
// mean the defaults), except for URL.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("rabbitmq: URL is empty"))
	} else if _, err := parseNodes(c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.Prefetch < 0 || c.Prefetch > maxPrefetch {
		errs = append(errs, fmt.Errorf("rabbitmq: Prefetch %d out of range 0..%d", c.Prefetch, maxPrefetch))
	}
	switch c.QueueType {
	case "", QueueQuorum, QueueClassic:
	default:
		errs = append(errs, fmt.Errorf("rabbitmq: QueueType %q, want %q or %q", c.QueueType, QueueQuorum, QueueClassic))
	}
	if c.ConfirmTimeout < 0 {
		errs = append(errs, fmt.Errorf("rabbitmq: ConfirmTimeout %v is negative", c.ConfirmTimeout))
	}
	if c.ConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("rabbitmq: ConnectTimeout %v is negative", c.ConnectTimeout))
	}
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("rabbitmq: MaxMessageBytes %d is negative", c.MaxMessageBytes))
	}
	if c.DeadLetterLimit < 0 {
		errs = append(errs, fmt.Errorf("rabbitmq: DeadLetterLimit %d is negative", c.DeadLetterLimit))
	}
	return errors.Join(errs...)
}

// urlPassword returns the password of rawURL, or "" if it has none or does
// not parse.
func urlPassword(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// amqpParams are the query parameters that OpenURL passes on to amqp091.
var amqpParams = []string{"auth_mechanism", "cacertfile", "certfile", "channel_max", "heartbeat", "keyfile", "server_name_indication"}

// ourParams are the query parameters that OpenURL turns into Config fields.
var ourParams = []string{"confirm_timeout", "connect_timeout", "dead_letter_limit", "max_message_bytes", "prefetch", "queue_type"}

// parseURL turns an amqp:// or amqps:// URL into a Config (see OpenURL).
func parseURL(u *url.URL) (Config, error) {
	if u.Scheme != "amqp" && u.Scheme != "amqps" {
		return Config{}, fmt.Errorf("rabbitmq: URL scheme %q, want amqp or amqps", u.Scheme)
	}
	if u.Opaque != "" {
		return Config{}, fmt.Errorf("rabbitmq: URL %s is opaque; want %s://USER:PASSWORD@HOST:PORT/VHOST", redact.URL(u.String()), u.Scheme)
	}
	var (
		c    Config
		errs []error
	)
	q := u.Query()
	rest := url.Values{}
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "prefetch":
			c.Prefetch, errs = parseInt(k, v, errs)
		case "max_message_bytes":
			c.MaxMessageBytes, errs = parseInt(k, v, errs)
		case "dead_letter_limit":
			c.DeadLetterLimit, errs = parseInt(k, v, errs)
		case "queue_type":
			c.QueueType = QueueType(v)
			if c.QueueType != QueueQuorum && c.QueueType != QueueClassic {
				errs = append(errs, fmt.Errorf("rabbitmq: query parameter queue_type=%q, want quorum or classic", v))
			}
		case "confirm_timeout":
			c.ConfirmTimeout, errs = parseDuration(k, v, errs)
		case "connect_timeout":
			c.ConnectTimeout, errs = parseDuration(k, v, errs)
		default:
			if !slices.Contains(amqpParams, k) {
				errs = append(errs, fmt.Errorf("rabbitmq: unknown query parameter %q (known: %s)", k, strings.Join(append(slices.Clone(ourParams), amqpParams...), ", ")))
				continue
			}
			rest[k] = vs
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	amqpURL := *u
	amqpURL.RawQuery = rest.Encode()
	amqpURL.ForceQuery = false
	c.URL = amqpURL.String()
	return c, c.Validate()
}

func parseInt(k, v string, errs []error) (int, []error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, append(errs, fmt.Errorf("rabbitmq: query parameter %s=%q is not an integer", k, v))
	}
	if n <= 0 {
		return 0, append(errs, fmt.Errorf("rabbitmq: query parameter %s=%d, want a positive integer", k, n))
	}
	return n, errs
}

func parseDuration(k, v string, errs []error) (time.Duration, []error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, append(errs, fmt.Errorf("rabbitmq: query parameter %s=%q is not a duration such as 30s or 500ms", k, v))
	}
	if d <= 0 {
		return 0, append(errs, fmt.Errorf("rabbitmq: query parameter %s=%v, want a positive duration", k, d))
	}
	return d, errs
}
