package driver

import (
	"errors"
	"fmt"
)

// Sentinel errors shared by drivers and the portable layer. Package pubsub
// exports the same values (pubsub.ErrClosed is ErrClosed, and so on) and
// documents them for users; drivers wrap them with %w and context.
var (
	ErrClosed          = errors.New("pubsub: closed")
	ErrInvalidTopic    = errors.New("pubsub: invalid topic name")
	ErrInvalidGroup    = errors.New("pubsub: invalid group name")
	ErrInvalidMessage  = errors.New("pubsub: invalid message")
	ErrInvalidOption   = errors.New("pubsub: invalid option")
	ErrMessageTooLarge = errors.New("pubsub: message too large")
	ErrNotFound        = errors.New("pubsub: not found")
	// ErrOrderingKeyPaused is wrapped by SendBatch's errors for messages
	// not sent because an earlier publish of their ordering key failed and
	// the transport keeps the key paused (so that no later message of the
	// key overtakes the failed one) until the application resumes it.
	ErrOrderingKeyPaused = errors.New("pubsub: ordering key paused")
)

// BatchError is returned by SendBatch when the broker said which messages
// of the batch it did not accept.
type BatchError struct {
	// Failed holds the indexes, in the batch, of the messages not
	// accepted, ascending.
	Failed []int
	// Err is the broker's reason for the first of them.
	Err error
}

// Error says how many messages failed and why the first did.
func (e *BatchError) Error() string {
	return fmt.Sprintf("%d messages not accepted: %v", len(e.Failed), e.Err)
}

// Unwrap returns Err.
func (e *BatchError) Unwrap() error { return e.Err }
