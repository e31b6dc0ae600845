package e2e_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/deadletters"
	"github.com/switchyard-go/switchyard/examples/notifier"
	"github.com/switchyard-go/switchyard/internal/testlog"
	"github.com/switchyard-go/switchyard/pubsub"
)

// logBuffer collects log lines; safe for concurrent use.
type logBuffer struct{ testlog.Buffer }

// lines returns the lines that contain every one of subs.
func (l *logBuffer) lines(subs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func loggedEnv(t *testing.T) (*env, *logBuffer) {
	e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
	var buf logBuffer
	e.log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return e, &buf
}

// TestLogs: an intended simulate_failure crash logs its stack once, at
// ERROR, with the dead letter (its retries at WARN without a stack); an
// export request is logged once by the transactions service, not once per
// publish attempt; empty lists are [] in JSON, not null.
func TestLogs(t *testing.T) {
	e, buf := loggedEnv(t)
	s := startActivityStack(t, e)
	code, body := call(t, http.MethodPost, s.activity+"/api/activity", events.UserActivity{UserID: "bob", Type: events.Purchased,
		Attributes: map[string]string{events.SimulateFailureAttribute: events.GroupAnalytics}})
	require.Equal(t, http.StatusAccepted, code, "%s", body)
	waitFor(t, 10*time.Second, "the dead letter", func() error {
		if n := len(buf.lines("dead-lettered")); n != 1 {
			return fmt.Errorf("%d dead-letter lines", n)
		}
		return nil
	})
	stacks := buf.lines("stack=")
	require.Len(t, stacks, 1, "the stack is logged once")
	assert.Contains(t, stacks[0], "level=ERROR")
	assert.Contains(t, stacks[0], "service=analytics")
	retries := buf.lines("handler panicked; will retry")
	assert.Len(t, retries, 2, "MaxAttempts 3: two retries")
	for _, l := range retries {
		assert.Contains(t, l, "level=WARN")
	}
	assert.Empty(t, buf.lines("level=ERROR", "service=audit"))

	for _, u := range []string{s.audit + "/api/deadletters", s.sink + "/api/webhooks"} {
		_, body := call(t, http.MethodGet, u, nil)
		assert.NotContains(t, string(body), "null", "%s: %s", u, body)
	}
	_, body = call(t, http.MethodGet, s.audit+"/api/deadletters", nil)
	assert.Contains(t, string(body), `"dead_letters": []`)

	e2, buf2 := loggedEnv(t)
	x := startExportStack(t, e2, exportConfig{exporters: 1})
	rid := x.request(t, "2025-01-01", "2025-01-31", "")
	x.waitStatus(t, rid, events.StatusCompleted, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // relays idle: nothing more to log
	assert.Len(t, buf2.lines("service=transactions", rid), 1, "one line per request: %q", buf2.lines(rid))
	assert.Len(t, buf2.lines("service=exporter", rid, "export completed"), 1)
	for _, l := range buf2.lines("service=exporter") {
		assert.LessOrEqual(t, strings.Count(l, " worker="), 1, "a key logged twice: %s", l)
	}
}

// TestCallbackRefusedByNotifier: an export.completed whose CallbackUrl
// points at an address the policy refuses (the cloud metadata service),
// however it got there, is dead-lettered at once without a call.
func TestCallbackRefusedByNotifier(t *testing.T) {
	e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
	b := e.broker(t)
	api := start(t, "notifier", func(ctx context.Context, ln net.Listener) error {
		return notifier.Run(ctx, notifier.Deps{Subscriber: e.broker(t), Namespace: e.ns, SubscribeOptions: e.fast, Listener: ln, Logger: e.log})
	})
	for _, cb := range []string{"http://169.254.169.254/latest/meta-data/", "http://10.0.0.7/admin"} {
		require.NoError(t, e.ns.ExportCompleted().Publish(context.Background(), b, events.ExportFinished{RID: "R", Status: "completed", CallbackURL: cb}))
	}
	var dead struct {
		DeadLetters []deadletters.Letter `json:"dead_letters"`
	}
	waitFor(t, 10*time.Second, "two dead letters", func() error {
		if err := getJSON(api+"/api/deadletters", &dead); err != nil {
			return err
		}
		if len(dead.DeadLetters) != 2 {
			return fmt.Errorf("%d dead letters", len(dead.DeadLetters))
		}
		return nil
	})
	for _, d := range dead.DeadLetters {
		assert.Contains(t, d.Reason, "is not on the allow-list")
		assert.Equal(t, 1, d.Attempts, "refused at once, not retried")
	}
}
