package memory

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/switchyard-go/switchyard/internal/redact"
)

// Defaults of Config.
const (
	// DefaultMaxMessageBytes is Google Cloud Pub/Sub's limit of 10 MB, the
	// smallest of this module's brokers, so that what memory accepts the
	// others accept too (Pub/Sub's own measure also counts encoding).
	DefaultMaxMessageBytes = 10_000_000
	DefaultGroupCapacity   = 100_000
	// DefaultDeadLetterCapacity is how many dead letters a group keeps.
	DefaultDeadLetterCapacity = 10_000
)

// Config configures a Broker. The zero value means every default.
type Config struct {
	// Name, when not empty, makes the broker a handle on the process-wide hub
	// of that name: brokers with the same Name share topics and groups (as
	// transport.Open("mem://NAME") does). Empty: a private hub of its own.
	// Every handle on a hub must give the same MaxMessageBytes,
	// GroupCapacity and DeadLetterCapacity.
	Name string
	// MaxMessageBytes is the largest message (pubsub.Message.Size) Publish
	// accepts. Default DefaultMaxMessageBytes (10 MB).
	MaxMessageBytes int
	// GroupCapacity is how many messages one group holds at most: waiting,
	// in flight and in backoff. Publish blocks while any group of the topic
	// is full, until room is freed or its context ends. Default
	// DefaultGroupCapacity (100,000).
	GroupCapacity int
	// DeadLetterCapacity is how many dead letters one group keeps. When
	// they are full, dead-lettering a message fails and the delivery loop
	// parks it (keeps it, retrying with backoff) until ReplayDeadLetters or
	// PurgeDeadLetters makes room. Default DefaultDeadLetterCapacity
	// (10,000).
	DeadLetterCapacity int
}

func (c *Config) setDefaults() {
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.GroupCapacity == 0 {
		c.GroupCapacity = DefaultGroupCapacity
	}
	if c.DeadLetterCapacity == 0 {
		c.DeadLetterCapacity = DefaultDeadLetterCapacity
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("memory: MaxMessageBytes %d is negative", c.MaxMessageBytes))
	}
	if c.GroupCapacity < 0 {
		errs = append(errs, fmt.Errorf("memory: GroupCapacity %d is negative", c.GroupCapacity))
	}
	if c.DeadLetterCapacity < 0 {
		errs = append(errs, fmt.Errorf("memory: DeadLetterCapacity %d is negative", c.DeadLetterCapacity))
	}
	return errors.Join(errs...)
}

// parseURL turns a mem:// URL into a Config (see OpenURL).
func parseURL(u *url.URL) (Config, error) {
	if u.Scheme != "mem" {
		return Config{}, fmt.Errorf("memory: URL scheme %q, want mem", u.Scheme)
	}
	if u.Opaque != "" || u.User != nil {
		return Config{}, fmt.Errorf("memory: URL %s: want mem://NAME (no user, no opaque part)", redact.URL(u.String()))
	}
	c := Config{Name: u.Host}
	if c.Name == "" {
		c.Name = "default"
	}
	if u.Path != "" && u.Path != "/" {
		// A path with an '@' may hold a password ("mem:/USER:PASS@HOST"):
		// show the URL only as redact gives it.
		return Config{}, fmt.Errorf("memory: URL %s: a path is not allowed; name the hub as mem://NAME", redact.URL(u.String()))
	}
	var errs []error
	for k, vs := range u.Query() {
		var field *int
		switch k {
		case "max_message_bytes":
			field = &c.MaxMessageBytes
		case "group_capacity":
			field = &c.GroupCapacity
		case "dead_letter_capacity":
			field = &c.DeadLetterCapacity
		default:
			errs = append(errs, fmt.Errorf("memory: unknown query parameter %q (known: max_message_bytes, group_capacity, dead_letter_capacity)", k))
			continue
		}
		n, err := strconv.Atoi(vs[len(vs)-1])
		if err != nil {
			errs = append(errs, fmt.Errorf("memory: query parameter %s=%q is not an integer", k, vs[len(vs)-1]))
			continue
		}
		*field = n
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}
