// Package deadletters serves an example service's dead letters over HTTP,
// through the broker's dead-letter admin (pubsub.DeadLetterAdmin): every
// consumer group has dead letters of its own, kept by the broker, which the
// service lists (GET /api/deadletters), replays to its own group once the
// cause is fixed (POST /api/deadletters/replay) or purges (POST
// /api/deadletters/purge).
package deadletters

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/pubsub"
)

// MaxListed is how many dead letters of each topic GET /api/deadletters
// lists, oldest first.
const MaxListed = 1000

// maxPayloadShown is how many bytes of a dead letter's payload are shown.
const maxPayloadShown = 4096

// Letter is one dead letter, as GET /api/deadletters lists it.
type Letter struct {
	ID             string            `json:"id"`
	Topic          string            `json:"topic"`
	Group          string            `json:"group"`
	Reason         string            `json:"reason"`
	Attempts       int               `json:"attempts"`
	DeadLetteredAt time.Time         `json:"dead_lettered_at"`
	Key            string            `json:"key,omitempty"`
	Payload        string            `json:"payload"`
	Metadata       map[string]string `json:"metadata,omitempty"`
}

// List is the dead letters of one consumer group on the topics it consumes.
// It is safe for concurrent use.
type List struct {
	group string
	admin pubsub.DeadLetterAdmin // nil when the broker has none

	mu     sync.Mutex
	topics []string
}

// New returns the List of group on broker b (a pubsub.DeadLetterAdmin, as
// every broker transport.Open returns; otherwise the list is empty and
// replay and purge answer 501).
func New(group string, b any) *List {
	a, _ := b.(pubsub.DeadLetterAdmin)
	return &List{group: group, admin: a}
}

// Add makes l cover topic.
func (l *List) Add(topic string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Contains(l.topics, topic) {
		l.topics = append(l.topics, topic)
	}
}

func (l *List) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.topics)
}

// Letters returns the group's dead letters of every topic, oldest first
// within a topic, at most MaxListed per topic.
func (l *List) Letters(ctx context.Context) ([]Letter, error) {
	out := []Letter{}
	if l.admin == nil {
		return out, nil
	}
	for _, topic := range l.snapshot() {
		ms, err := l.admin.ListDeadLetters(ctx, topic, l.group, MaxListed)
		if errors.Is(err, pubsub.ErrNotFound) {
			continue // the group was deleted
		}
		if err != nil {
			return nil, fmt.Errorf("list dead letters of %s on %s: %w", l.group, topic, err)
		}
		for _, m := range ms {
			out = append(out, letter(topic, l.group, m))
		}
	}
	return out, nil
}

func letter(topic, group string, m *pubsub.Message) Letter {
	attempts, _ := strconv.Atoi(m.Metadata[pubsub.MetadataAttempts])
	at, _ := time.Parse(time.RFC3339Nano, m.Metadata[pubsub.MetadataDeadLetterTime])
	return Letter{
		ID: m.ID, Topic: topic, Group: group,
		Reason:         m.Metadata[pubsub.MetadataDeadLetterReason],
		Attempts:       attempts,
		DeadLetteredAt: at,
		Key:            m.Key,
		Payload:        printable(m.Payload),
		Metadata:       m.Metadata,
	}
}

// Register adds GET /api/deadletters, POST /api/deadletters/replay and POST
// /api/deadletters/purge to mux.
func (l *List) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/deadletters", l.serveList)
	mux.HandleFunc("POST /api/deadletters/replay", l.serveAction("replay"))
	mux.HandleFunc("POST /api/deadletters/purge", l.serveAction("purge"))
}

// serveList answers {"group": ..., "dead_letters": [...]}.
func (l *List) serveList(w http.ResponseWriter, r *http.Request) {
	letters, err := l.Letters(r.Context())
	if err != nil {
		httpx.WriteError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		Group       string   `json:"group"`
		DeadLetters []Letter `json:"dead_letters"`
	}{l.group, letters})
}

// ActionRequest is the body of POST /api/deadletters/replay and /purge:
// the topic, and the IDs of the dead letters (all of them when ids is
// empty and all is true).
type ActionRequest struct {
	Topic string   `json:"topic"`
	IDs   []string `json:"ids"`
	All   bool     `json:"all"`
}

// ActionResult answers POST /api/deadletters/replay and /purge.
type ActionResult struct {
	Group    string `json:"group"`
	Topic    string `json:"topic"`
	Replayed int    `json:"replayed,omitempty"`
	Purged   int    `json:"purged,omitempty"`
}

// maxIDs bounds the IDs of one request.
const maxIDs = 1000

func (l *List) serveAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req ActionRequest
		if err := httpx.DecodeJSON(w, r, 0, &req); err != nil {
			httpx.WriteRequestError(w, err)
			return
		}
		switch {
		case !slices.Contains(l.snapshot(), req.Topic):
			httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("topic: want one of %v", l.snapshot()))
			return
		case len(req.IDs) == 0 && !req.All:
			httpx.WriteError(w, http.StatusBadRequest, `ids: give the IDs, or "all": true`)
			return
		case len(req.IDs) > 0 && req.All:
			httpx.WriteError(w, http.StatusBadRequest, `give either ids or "all": true, not both`)
			return
		case len(req.IDs) > maxIDs:
			httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("ids: %d, at most %d", len(req.IDs), maxIDs))
			return
		case l.admin == nil:
			httpx.WriteError(w, http.StatusNotImplemented, "the broker has no dead-letter admin")
			return
		}
		res := ActionResult{Group: l.group, Topic: req.Topic}
		var err error
		if action == "replay" {
			res.Replayed, err = l.admin.ReplayDeadLetters(r.Context(), req.Topic, l.group, req.IDs...)
		} else {
			res.Purged, err = l.admin.PurgeDeadLetters(r.Context(), req.Topic, l.group, req.IDs...)
		}
		if err != nil {
			httpx.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("%s dead letters: %v", action, err))
			return
		}
		httpx.WriteJSON(w, http.StatusOK, res)
	}
}

// printable returns the payload as text when it is UTF-8, else as hex, cut
// to maxPayloadShown bytes.
func printable(b []byte) string {
	if len(b) > maxPayloadShown {
		b = b[:maxPayloadShown]
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return fmt.Sprintf("%x", b)
}
