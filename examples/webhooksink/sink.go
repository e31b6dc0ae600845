package webhooksink

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/internal/service"
)

// MaxBodyBytes is the largest webhook body the sink accepts.
const MaxBodyBytes = 1 << 20

// Call is one webhook call the sink accepted.
type Call struct {
	Path           string `json:"path"`
	Event          string `json:"event,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// TraceParent is the W3C traceparent header of the call, if any: the
	// notifier's calls continue the trace of the event they notify.
	TraceParent string          `json:"traceparent,omitempty"`
	Body        json.RawMessage `json:"body"`
	ReceivedAt  time.Time       `json:"received_at"`
}

// Sink records webhook calls. It is an http.Handler and safe for concurrent
// use.
type Sink struct {
	log      *slog.Logger
	mu       sync.Mutex
	calls    []Call
	failures map[string]int // refusals so far per path+key, for ?fail=N
	notify   chan struct{}  // closed and replaced on every accepted call
	mux      *http.ServeMux
}

// New returns an empty Sink that logs to log (slog.Default() when nil).
func New(log *slog.Logger) *Sink {
	if log == nil {
		log = slog.Default()
	}
	s := &Sink{log: log.With("service", "webhook-sink"), failures: map[string]int{}, notify: make(chan struct{})}
	s.mux = http.NewServeMux()
	health.Register(s.mux) // no broker, no database: ready while it serves
	s.mux.HandleFunc("POST /hooks/", s.receive)
	s.mux.HandleFunc("GET /api/webhooks", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, struct {
			Calls []Call `json:"calls"`
		}{s.Calls()})
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Sink) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if !json.Valid(body) {
		httpx.WriteError(w, http.StatusBadRequest, "body is not JSON")
		return
	}
	q, err := httpx.Query(r, "fail")
	if err != nil {
		httpx.WriteRequestError(w, err)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if n, _ := strconv.Atoi(q.Get("fail")); n > 0 {
		s.mu.Lock()
		id := r.URL.Path + " " + key
		refuse := s.failures[id] < n
		if refuse {
			s.failures[id]++
		}
		s.mu.Unlock()
		if refuse {
			s.log.Info("webhook refused on purpose (fail=N)", "path", r.URL.Path, "idempotency_key", key)
			httpx.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("failing the first %d calls on purpose", n))
			return
		}
	}
	c := Call{Path: r.URL.Path, Event: r.Header.Get("X-Switchyard-Event"), IdempotencyKey: key,
		TraceParent: r.Header.Get("Traceparent"), Body: body, ReceivedAt: time.Now().UTC()}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
	s.log.Info("webhook received", "path", c.Path, "event", c.Event, "idempotency_key", key, "body", logged(body))
	w.WriteHeader(http.StatusNoContent)
}

// logged is at most 1 KiB of a body, for the log.
func logged(b []byte) string {
	if len(b) > 1024 {
		return string(b[:1024]) + "..."
	}
	return string(b)
}

// Calls returns the calls accepted so far, oldest first.
func (s *Sink) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call{}, s.calls...)
}

// Wait blocks until some accepted call satisfies match, or ctx ends, and
// returns it.
func (s *Sink) Wait(ctx context.Context, match func(Call) bool) (Call, error) {
	for {
		s.mu.Lock()
		for _, c := range s.calls {
			if match(c) {
				s.mu.Unlock()
				return c, nil
			}
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Call{}, ctx.Err()
		}
	}
}

// Deps is what the sink service runs on.
type Deps struct {
	// Sink records the calls (default New(Logger)).
	Sink *Sink
	// Listener is where it serves; if nil, Run listens on Addr.
	Listener net.Listener
	// Addr is the listen address when Listener is nil (default ":http").
	Addr string
	// Logger logs the calls (default slog.Default()).
	Logger *slog.Logger
}

// Run serves the sink until ctx ends.
func Run(ctx context.Context, deps Deps) error {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Sink == nil {
		deps.Sink = New(deps.Logger)
	}
	srv := service.Server{Name: "webhook sink", Listener: deps.Listener, Addr: deps.Addr, Logger: deps.Logger}
	return srv.Serve(ctx, deps.Sink, "webhook sink listening", "service", "webhook-sink")
}
