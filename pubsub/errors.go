package pubsub

import (
	"errors"
	"fmt"
)

// Sentinel errors. Transports wrap them with %w and context (topic, group,
// limit); test with errors.Is.
var (
	// ErrClosed is returned by calls on a closed Publisher, Subscriber,
	// Broker or Subscription.
	ErrClosed = errors.New("pubsub: closed")
	// ErrInvalidTopic is returned for a topic name that is empty, longer than
	// MaxNameLength bytes, or has characters other than letters, digits and
	// "._-".
	ErrInvalidTopic = errors.New("pubsub: invalid topic name")
	// ErrInvalidGroup is returned for a consumer group name that breaks the
	// same rules as topic names.
	ErrInvalidGroup = errors.New("pubsub: invalid group name")
	// ErrInvalidMessage is returned by Publish for a nil message or one using
	// reserved metadata in a way the transport cannot carry.
	ErrInvalidMessage = errors.New("pubsub: invalid message")
	// ErrInvalidOption is returned for an option value out of its range, such
	// as WithConcurrency(0).
	ErrInvalidOption = errors.New("pubsub: invalid option")
	// ErrMessageTooLarge is returned by Publish, before anything is sent, for
	// a message larger than the transport's limit.
	ErrMessageTooLarge = errors.New("pubsub: message too large")
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
