// Package health serves the probes every example service has: GET /healthz
// (liveness: the process serves HTTP) and GET /readyz (readiness: the
// broker, and the database of the services that have one, answer a ping
// within Timeout).
package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Timeout bounds each readiness check: a dependency that has not answered
// by then is reported not ready.
const Timeout = 2 * time.Second

// Check is one dependency a service needs to be ready.
type Check struct {
	// Name names the dependency in the answer, such as "broker".
	Name string
	// Ping returns nil when the dependency is ready. Nil when the dependency
	// cannot be checked: it then counts as ready, and Note says why.
	Ping func(ctx context.Context) error
	// Note is shown next to a check that has no Ping.
	Note string
}

// Broker checks a broker through its pubsub.Pinger. A broker that does not
// implement pubsub.Pinger is reported ready, with a note saying it is not
// checked.
func Broker(b any) Check {
	if p, ok := b.(pubsub.Pinger); ok {
		return Check{Name: "broker", Ping: p.Ping}
	}
	return Check{Name: "broker", Note: fmt.Sprintf("%T does not implement pubsub.Pinger: not checked, assumed ready", b)}
}

// Pinger is what Database needs of a database: *sql.DB has it.
type Pinger interface {
	PingContext(ctx context.Context) error
}

// Database checks a database with db.PingContext.
func Database(db Pinger) Check {
	return Check{Name: "database", Ping: db.PingContext}
}

// Values of Report.Status and Result.Status.
const (
	StatusReady     = "ready"
	StatusNotReady  = "not ready"
	StatusOK        = "ok"
	StatusFailing   = "failing"
	StatusUnchecked = "unchecked"
)

// Report is the JSON body of GET /readyz.
type Report struct {
	// Status is StatusReady (200) or StatusNotReady (503).
	Status string `json:"status"`
	// Error names what is not ready, when Status is StatusNotReady.
	Error string `json:"error,omitempty"`
	// Checks has one Result per Check, in the order given.
	Checks []Result `json:"checks"`
}

// Result is the outcome of one Check.
type Result struct {
	Name string `json:"name"`
	// Status is StatusOK, StatusFailing or StatusUnchecked.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Register adds GET /healthz (Live) and GET /readyz (Ready(checks...)) to
// mux.
func Register(mux *http.ServeMux, checks ...Check) {
	mux.HandleFunc("GET /healthz", Live)
	mux.Handle("GET /readyz", Ready(checks...))
}

// Live answers 200 "ok": the process is up and serving HTTP. It checks
// nothing else, so that an orchestrator restarts a service only when it is
// stuck, not when its broker is down. Services register it once they
// started, so a client's first successful probe means the service runs.
func Live(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// Ready returns the readiness handler: it runs every check at once, each
// bounded by Timeout, and answers 200 with a Report when all passed, 503
// with a Report whose Error names every failing dependency otherwise. With
// no checks it answers 200.
func Ready(checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := Run(r.Context(), checks...)
		status := http.StatusOK
		if rep.Status != StatusReady {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, status, rep)
	})
}

// Run runs checks concurrently, each bounded by Timeout (and ctx), and
// reports the outcome. A Ping that ignores its context is abandoned at the
// deadline and reported as failing.
func Run(ctx context.Context, checks ...Check) Report {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	errs := make([]chan error, len(checks))
	for i, c := range checks {
		if c.Ping == nil {
			continue
		}
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- c.Ping(ctx) }()
	}
	rep := Report{Status: StatusReady, Checks: make([]Result, len(checks))}
	var failing []string
	for i, c := range checks {
		res := Result{Name: c.Name, Status: StatusOK}
		if errs[i] == nil {
			res.Status, res.Note = StatusUnchecked, c.Note
			rep.Checks[i] = res
			continue
		}
		var err error
		select {
		case err = <-errs[i]:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", time.Since(start).Round(10*time.Millisecond))
		}
		if err != nil {
			res.Status, res.Error = StatusFailing, err.Error()
			failing = append(failing, c.Name+": "+err.Error())
		}
		rep.Checks[i] = res
	}
	if len(failing) > 0 {
		rep.Status, rep.Error = StatusNotReady, "not ready: "+strings.Join(failing, "; ")
	}
	return rep
}
