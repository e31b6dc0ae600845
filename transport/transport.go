// Package transport opens a pubsub.Broker from a URL, so that the broker is
// a matter of configuration:
//
//	mem://[NAME]                  in-process broker (package memory)
//	amqp://USER:PASS@HOST:PORT/VHOST, amqps://...  RabbitMQ (package rabbitmq)
//	gcppubsub://PROJECT           Google Cloud Pub/Sub (package gcppubsub)
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
	"github.com/switchyard-go/switchyard/transport/rabbitmq"
)

// ErrUnknownScheme is returned by Open for a URL whose scheme no transport
// serves.
var ErrUnknownScheme = errors.New("transport: unknown URL scheme")

// ErrInvalidURL is returned by Open for a URL that does not parse or lacks a
// scheme.
var ErrInvalidURL = errors.New("transport: invalid URL")

// openers maps each scheme to its transport's opener.
var openers = map[string]func(ctx context.Context, u *url.URL) (pubsub.Broker, error){
	"mem":       opener(func(_ context.Context, u *url.URL) (*memory.Broker, error) { return memory.OpenURL(u) }),
	"amqp":      opener(rabbitmq.OpenURL),
	"amqps":     opener(rabbitmq.OpenURL),
	"gcppubsub": opener(gcppubsub.OpenURL),
}

// opener adapts a transport's OpenURL, so that a failed open returns a nil
// interface rather than an interface holding a nil pointer.
func opener[B pubsub.Broker](open func(context.Context, *url.URL) (B, error)) func(context.Context, *url.URL) (pubsub.Broker, error) {
	return func(ctx context.Context, u *url.URL) (pubsub.Broker, error) {
		b, err := open(ctx, u)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
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

// Open returns the broker that rawURL names, connected and ready. It blocks
// while connecting, bounded by ctx and by the transport's own connect timeout.
// Errors wrap ErrInvalidURL or ErrUnknownScheme, or the transport's error; no
// error or log line carries the URL's password. The caller must Close the
// broker.
func Open(ctx context.Context, rawURL string) (pubsub.Broker, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidURL, redact.URL(rawURL))
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("%w: %q has no scheme (want one of %s)", ErrInvalidURL, redact.URL(rawURL), strings.Join(Schemes(), ", "))
	}
	open := openers[u.Scheme]
	if open == nil {
		return nil, fmt.Errorf("%w %q (want one of %s)", ErrUnknownScheme, u.Scheme, strings.Join(Schemes(), ", "))
	}
	return open(ctx, u)
}
