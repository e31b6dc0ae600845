package pubsub

import (
	"errors"
	"fmt"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// Sentinel errors. Errors wrap them with %w and context (topic, group,
// limit); test with errors.Is. They are the same values as package
// driver's, so that transports can return them.
var (
	// ErrClosed is returned by calls on a closed Publisher, Subscriber,
	// Broker or Subscription, and by Subscribe while a Broker shuts down.
	ErrClosed = driver.ErrClosed
	// ErrInvalidTopic is returned for a topic name that is empty, longer than
	// MaxNameLength bytes, or has characters other than letters, digits and
	// "._-", or that the transport reserves (RabbitMQ's "amq." prefix).
	ErrInvalidTopic = driver.ErrInvalidTopic
	// ErrInvalidGroup is returned for a consumer group name that breaks the
	// same rules as topic names.
	ErrInvalidGroup = driver.ErrInvalidGroup
	// ErrInvalidMessage is returned by Publish for a nil message or one using
	// reserved metadata in a way the transport cannot carry.
	ErrInvalidMessage = driver.ErrInvalidMessage
	// ErrInvalidOption is returned for an option value out of its range, such
	// as WithConcurrency(0), and for a nil handler.
	ErrInvalidOption = driver.ErrInvalidOption
	// ErrMessageTooLarge is returned by Publish, before anything is sent, for
	// a message larger than the transport's limit.
	ErrMessageTooLarge = driver.ErrMessageTooLarge
	// ErrNotFound is returned by the group and dead-letter admin calls for a
	// group that does not exist.
	ErrNotFound = driver.ErrNotFound
	// ErrOrderingKeyPaused is returned by Publish (inside a *PublishError
	// where the transport tells which messages failed) for messages with an
	// ordering key whose earlier publish failed: the transport keeps the key
	// paused, so that no later message of the key overtakes the failed one,
	// and refuses the key's messages until the application resumes it (the
	// transport's package documents how, for example through Client.As).
	// The message that failed first wraps it too.
	ErrOrderingKeyPaused = driver.ErrOrderingKeyPaused
)

// Permanent marks err as not worth retrying: a handler that returns
// Permanent(err) has its message dead-lettered at once, with err's text as the
// reason. Permanent(nil) returns nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was made by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// PanicError is the error a handler's recovered panic becomes; the message is
// then retried like any other failure.
type PanicError struct {
	// Value is what the handler passed to panic.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

// Error describes the panic, without the stack.
func (p *PanicError) Error() string { return fmt.Sprintf("pubsub: handler panicked: %v", p.Value) }

// PublishError is returned by Publish when the broker said which messages of
// the batch it did not accept; the others were accepted. Publish returns
// other errors when it cannot tell (then any subset may have been
// accepted). Use errors.As to get it.
type PublishError struct {
	// Topic is the topic published to.
	Topic string
	// Failed holds the indexes, in the msgs given to Publish, of the
	// messages not accepted, ascending.
	Failed []int
	// IDs holds the IDs of those messages, in the same order.
	IDs []string
	// Err is the broker's reason for the first of them.
	Err error
}

// Error says how many messages failed, the first one's ID and why.
func (e *PublishError) Error() string {
	first := ""
	if len(e.IDs) > 0 {
		first = " (first " + e.IDs[0] + ")"
	}
	return fmt.Sprintf("pubsub: publish to %s: %d messages not accepted%s: %v", e.Topic, len(e.Failed), first, e.Err)
}

// Unwrap returns Err.
func (e *PublishError) Unwrap() error { return e.Err }
