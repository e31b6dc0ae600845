// Package transport opens a pubsub.Broker from a URL, so that the broker is
// a matter of configuration:
//
//	mem://[NAME]                  in-process broker (package memory)
//	amqp://USER:PASS@HOST:PORT/VHOST, amqps://...  RabbitMQ (package rabbitmq)
//	gcppubsub://PROJECT           Google Cloud Pub/Sub (package gcppubsub)
//	nats://HOST:PORT[,HOST...], tls://...  NATS JetStream (package nats)
//
// Each transport's package documents its query parameters. This package is
// the only one that knows every scheme; there is no registration.
package transport

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/switchyard-go/switchyard/internal/redact"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
	"github.com/switchyard-go/switchyard/transport/nats"
	"github.com/switchyard-go/switchyard/transport/rabbitmq"
)

// ErrUnknownScheme is returned by Open for a URL whose scheme no transport
// serves.
var ErrUnknownScheme = errors.New("transport: unknown URL scheme")

// ErrInvalidURL is returned by Open for a URL that does not parse or lacks a
// scheme.
var ErrInvalidURL = errors.New("transport: invalid URL")

// openers maps each scheme to its transport's opener.
var openers = map[string]func(ctx context.Context, u *url.URL, opts ...pubsub.BrokerOption) (*pubsub.Client, error){
	"mem": func(_ context.Context, u *url.URL, opts ...pubsub.BrokerOption) (*pubsub.Client, error) {
		return memory.OpenURL(u, opts...)
	},
	"amqp":      rabbitmq.OpenURL,
	"amqps":     rabbitmq.OpenURL,
	"gcppubsub": gcppubsub.OpenURL,
	"nats":      nats.OpenURL,
	"tls":       nats.OpenURL,
}

// Schemes returns the URL schemes Open accepts, sorted.
func Schemes() []string {
	s := make([]string, 0, len(openers))
	for k := range openers {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Open returns the broker that rawURL names, connected and ready; opts
// configure its portable layer (logger, subscription defaults, middleware,
// observers; see pubsub.BrokerOption). The broker is a *pubsub.Client, so it
// also implements pubsub.DeadLetterAdmin, pubsub.GroupCreator,
// pubsub.GroupDeleter and pubsub.Pinger. Open blocks while connecting,
// bounded by ctx and by the transport's own connect timeout. Errors wrap
// ErrInvalidURL or ErrUnknownScheme, or are the transport's or
// pubsub.ErrInvalidOption; no error or log line carries the URL's password.
// The caller must Close (or Shutdown) the broker.
func Open(ctx context.Context, rawURL string, opts ...pubsub.BrokerOption) (pubsub.Broker, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidURL, redact.URL(rawURL))
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("%w: %q has no scheme (want one of %s)", ErrInvalidURL, redactUser(u), strings.Join(Schemes(), ", "))
	}
	open := openers[u.Scheme]
	if open == nil {
		return nil, fmt.Errorf("%w %q (want one of %s)", ErrUnknownScheme, u.Scheme, strings.Join(Schemes(), ", "))
	}
	b, err := open(ctx, u, opts...)
	if err != nil {
		return nil, err // a nil interface, not one holding a nil *Client
	}
	return b, nil
}

// redactUser returns u with any user information replaced by "xxxxx": with
// no scheme, a user without a password may be a token (as in NATS URLs).
func redactUser(u *url.URL) string {
	if u.User == nil {
		return redact.URL(u.String())
	}
	v := *u
	v.User = url.User("xxxxx")
	return v.String()
}
