package gcppubsub

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/api/option"

	"github.com/switchyard-go/switchyard/internal/redact"
)

// Defaults and limits of Config.
const (
	// DefaultMaxMessageBytes is the default and the largest
	// Config.MaxMessageBytes: Pub/Sub's 10,000,000-byte publish request
	// limit less 4,096 bytes kept for the request's topic name, for the
	// metadata a dead letter adds and for the attributes of a message handed
	// back to its group, so that every accepted message can also be
	// dead-lettered and handed back.
	DefaultMaxMessageBytes = 10_000_000 - deadLetterHeadroom
	// DefaultAckDeadline is the ack deadline of the subscriptions the broker
	// creates: how long Pub/Sub waits before redelivering a message whose
	// consumer stopped extending its lease (crashed).
	DefaultAckDeadline = 10 * time.Second
	// DefaultReceiveStreams is how many StreamingPull streams each
	// subscription opens by default.
	DefaultReceiveStreams = 1
	// DefaultDeadLetterRetention is how long a group's dead letters are
	// kept by default: Pub/Sub's default (and longest) message retention of
	// a subscription, 7 days.
	DefaultDeadLetterRetention = 7 * 24 * time.Hour

	minAckDeadline = 10 * time.Second
	maxAckDeadline = 600 * time.Second
	// Pub/Sub's range for a subscription's message retention.
	minRetention = 10 * time.Minute
	maxRetention = 7 * 24 * time.Hour
)

// Config configures the Pub/Sub transport (New). Only ProjectID is required;
// every other field's zero value means its default.
type Config struct {
	// ProjectID is the Google Cloud project that holds the topics and
	// subscriptions. Required.
	ProjectID string
	// ClientOptions are passed to pubsub.NewClient after the defaults, for
	// example option.WithCredentialsFile. Default none: Application Default
	// Credentials, or no credentials at all when PUBSUB_EMULATOR_HOST is set
	// (the client then talks plain gRPC to that emulator).
	ClientOptions []option.ClientOption
	// DisableAutoCreate, when true, makes the broker create and change
	// nothing: topics, subscriptions and their filters and policies must
	// exist already, as "Topic mapping" in the package documentation
	// describes (for deployments whose identity may only publish and
	// subscribe). The broker still reads a group's subscription when it
	// may. Default false: Publish creates a missing topic, CreateGroup and
	// Subscribe a group's subscription, dead-letter topic and dead-letter
	// subscription, and Subscribe sets the policies that carry the attempt
	// count and the retry backoff (see "Delivery semantics").
	DisableAutoCreate bool
	// DisableOrdering, when true, creates subscriptions without message
	// ordering: Key still travels as the ordering key but messages of one key
	// may be handled concurrently and out of order. Default false: ordering
	// is enabled on every subscription the broker creates.
	DisableOrdering bool
	// MaxMessageBytes is the largest message Publish accepts, measured as
	// Pub/Sub does: the encoded message with payload, attributes (metadata
	// and the ID) and ordering key. Default and maximum
	// DefaultMaxMessageBytes.
	MaxMessageBytes int
	// AckDeadline is the ack deadline of the subscriptions the broker
	// creates, between 10s and 600s. Default DefaultAckDeadline (10s).
	AckDeadline time.Duration
	// ReceiveStreams is how many StreamingPull streams each Subscription
	// opens (the client's ReceiveSettings.NumGoroutines). Default
	// DefaultReceiveStreams (1); one stream carries about 10 MB/s on Pub/Sub,
	// and about 100 messages/s on the pstest emulator. Each stream may
	// fetch up to twice the subscription's concurrency ahead.
	ReceiveStreams int
	// DeadLetterRetention is how long a group's dead letters are kept: the
	// message retention of its dead-letter subscription, from 10 minutes to
	// 7 days (Pub/Sub's range), in whole seconds. Default
	// DefaultDeadLetterRetention (7 days). It applies to dead-letter
	// subscriptions the broker creates; pstest keeps every message for at
	// most 10 minutes whatever it is set to.
	DeadLetterRetention time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.AckDeadline == 0 {
		c.AckDeadline = DefaultAckDeadline
	}
	if c.ReceiveStreams == 0 {
		c.ReceiveStreams = DefaultReceiveStreams
	}
	if c.DeadLetterRetention == 0 {
		c.DeadLetterRetention = DefaultDeadLetterRetention
	}
}

// Validate reports every problem with c at once. Zero values are valid
// (they mean the defaults), except for ProjectID.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("gcppubsub: "+format, args...)) }
	if err := validateProject(c.ProjectID); err != nil {
		errs = append(errs, err)
	}
	if c.MaxMessageBytes < 0 || c.MaxMessageBytes > DefaultMaxMessageBytes {
		bad("MaxMessageBytes %d out of range 1..%d (Pub/Sub's limit less dead-letter headroom)", c.MaxMessageBytes, DefaultMaxMessageBytes)
	}
	if c.AckDeadline != 0 && (c.AckDeadline < minAckDeadline || c.AckDeadline > maxAckDeadline || c.AckDeadline%time.Second != 0) {
		bad("AckDeadline %v out of range: whole seconds from %v to %v", c.AckDeadline, minAckDeadline, maxAckDeadline)
	}
	if c.ReceiveStreams < 0 {
		bad("ReceiveStreams %d is negative", c.ReceiveStreams)
	}
	if r := c.DeadLetterRetention; r != 0 && (r < minRetention || r > maxRetention || r%time.Second != 0) {
		bad("DeadLetterRetention %v out of range: whole seconds from %v to %v", r, minRetention, maxRetention)
	}
	return errors.Join(errs...)
}

// validateProject accepts Google Cloud project IDs, including the legacy
// domain-scoped form "example.com:project", and nothing that could change the
// meaning of a resource path.
func validateProject(p string) error {
	if p == "" {
		return errors.New("gcppubsub: ProjectID is empty")
	}
	if len(p) > 100 {
		return fmt.Errorf("gcppubsub: ProjectID of %d bytes is too long", len(p))
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == ':') {
			return fmt.Errorf("gcppubsub: ProjectID %q has %q at byte %d (allowed: letters, digits, '-', '.', ':')", p, c, i)
		}
	}
	return nil
}

// urlParams are the query parameters OpenURL knows, each with the Config
// field it sets.
var urlParams = map[string]func(c *Config, v string) error{
	"create": func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		c.DisableAutoCreate = !b
		return err
	},
	"ordering": func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		c.DisableOrdering = !b
		return err
	},
	"max_message_bytes": func(c *Config, v string) (err error) {
		c.MaxMessageBytes, err = strconv.Atoi(v)
		return err
	},
	"ack_deadline": func(c *Config, v string) (err error) {
		c.AckDeadline, err = time.ParseDuration(v)
		return err
	},
	"streams": func(c *Config, v string) (err error) {
		c.ReceiveStreams, err = strconv.Atoi(v)
		return err
	},
	"dead_letter_retention": func(c *Config, v string) (err error) {
		c.DeadLetterRetention, err = time.ParseDuration(v)
		return err
	},
}

// parseURL turns a gcppubsub:// URL into a Config (see OpenURL). Its errors
// never repeat the URL's user information.
func parseURL(u *url.URL) (Config, error) {
	if u.Scheme != "gcppubsub" {
		return Config{}, fmt.Errorf("gcppubsub: URL scheme %q, want gcppubsub", u.Scheme)
	}
	if u.User != nil {
		return Config{}, errors.New("gcppubsub: URL has user information; credentials do not belong in the URL (use Application Default Credentials or PUBSUB_EMULATOR_HOST)")
	}
	if u.Path != "" && u.Path != "/" || u.Opaque != "" {
		// An opaque part ("gcppubsub:USER:PASSWORD@...") or a path may hold
		// a password: show the URL only as redact gives it.
		return Config{}, fmt.Errorf("gcppubsub: URL %s: a path or opaque part is not allowed; the URL is gcppubsub://PROJECT_ID", redact.URL(u.String()))
	}
	c := Config{ProjectID: u.Host}
	errs := []error{}
	for k, vs := range u.Query() {
		set := urlParams[k]
		if set == nil {
			errs = append(errs, fmt.Errorf("gcppubsub: unknown query parameter %q (known: %s)", k, strings.Join(knownParams(), ", ")))
			continue
		}
		v := vs[len(vs)-1]
		if err := set(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("gcppubsub: query parameter %s=%q: %w", k, v, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

func knownParams() []string {
	ks := make([]string, 0, len(urlParams))
	for k := range urlParams {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
