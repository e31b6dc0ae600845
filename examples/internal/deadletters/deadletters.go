// Package deadletters lets an example service read its own dead letters: it
// subscribes to a topic's dead-letter topic with the service's group name,
// keeps the letters that this group gave up on, logs each, and lists them over
// HTTP (GET /api/deadletters).
package deadletters

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/pubsub"
)

// MaxKept is how many dead letters a List keeps; older ones are dropped from
// the listing (not from the broker's log, which logged them).
const MaxKept = 1000

// Letter is one dead-lettered message, as GET /api/deadletters lists it.
type Letter struct {
	ID         string            `json:"id"`
	Topic      string            `json:"topic"`
	Group      string            `json:"group"`
	Reason     string            `json:"reason"`
	Attempts   int               `json:"attempts"`
	Payload    string            `json:"payload"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	ReceivedAt time.Time         `json:"received_at"`
}

// List holds the dead letters of one consumer group. It is safe for
// concurrent use and is an http.Handler serving them as JSON.
type List struct {
	group string
	log   *slog.Logger
	mu    sync.Mutex
	kept  []Letter
	seen  map[string]bool
}

// New returns an empty List for group.
func New(group string, log *slog.Logger) *List {
	return &List{group: group, log: log, seen: map[string]bool{}}
}

// Watch subscribes to the dead-letter topic of topic (topic +
// pubsub.DeadLetterSuffix) with l's group name and records the letters whose
// pubsub.MetadataGroup is that group, ignoring other groups' letters. The
// subscription ends with ctx or when closed.
func (l *List) Watch(ctx context.Context, s pubsub.Subscriber, topic string) (*pubsub.Subscription, error) {
	dlq := topic + pubsub.DeadLetterSuffix
	sub, err := s.Subscribe(ctx, dlq, l.group, l.handle, pubsub.WithConcurrency(1), pubsub.WithLogger(l.log))
	if err != nil {
		return nil, fmt.Errorf("subscribe to dead letters %s as %s: %w", dlq, l.group, err)
	}
	return sub, nil
}

func (l *List) handle(_ context.Context, m *pubsub.Message) error {
	if m.Metadata[pubsub.MetadataGroup] != l.group {
		return nil // another group's dead letter: not ours to report
	}
	attempts, _ := strconv.Atoi(m.Metadata[pubsub.MetadataAttempts])
	letter := Letter{
		ID:         m.ID,
		Topic:      m.Metadata[pubsub.MetadataOriginalTopic],
		Group:      l.group,
		Reason:     m.Metadata[pubsub.MetadataDeadLetterReason],
		Attempts:   attempts,
		Payload:    printable(m.Payload),
		Metadata:   m.Metadata,
		ReceivedAt: time.Now().UTC(),
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[m.ID] {
		return nil
	}
	l.seen[m.ID] = true
	l.log.Error("dead letter: the handler gave up on a message",
		"group", l.group, "topic", letter.Topic, "message_id", m.ID, "attempts", attempts, "reason", letter.Reason)
	l.kept = append(l.kept, letter)
	if len(l.kept) > MaxKept {
		delete(l.seen, l.kept[0].ID)
		l.kept = l.kept[1:]
	}
	return nil
}

// Letters returns a copy of the dead letters kept, oldest first.
func (l *List) Letters() []Letter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Letter(nil), l.kept...)
}

// ServeHTTP answers GET with {"group": ..., "dead_letters": [...]}.
func (l *List) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		httpx.WriteError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		Group       string   `json:"group"`
		DeadLetters []Letter `json:"dead_letters"`
	}{l.group, l.Letters()})
}

func printable(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return fmt.Sprintf("%x", b)
}
