package e2e_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/activity"
	"github.com/switchyard-go/switchyard/examples/analytics"
	"github.com/switchyard-go/switchyard/examples/audit"
	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/deadletters"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/notifier"
	"github.com/switchyard-go/switchyard/examples/webhooksink"
	"github.com/switchyard-go/switchyard/pubsub"
)

// activityStack is the fan-out example running: the producer, the three
// consumer groups and a webhook receiver.
type activityStack struct {
	activity, audit, analytics, notifier, sink string
	hooks                                      *webhooksink.Sink
}

func startActivityStack(t *testing.T, e *env) activityStack {
	var s activityStack
	s.hooks = webhooksink.New(e.log)
	s.sink = start(t, "webhook-sink", func(ctx context.Context, ln net.Listener) error {
		return webhooksink.Run(ctx, webhooksink.Deps{Sink: s.hooks, Listener: ln, Logger: e.log})
	})
	opts := append([]pubsub.SubscribeOption{pubsub.WithMaxAttempts(3)}, e.fast...)
	s.audit = start(t, "audit", func(ctx context.Context, ln net.Listener) error {
		return audit.Run(ctx, audit.Deps{Subscriber: e.broker(t), Namespace: e.ns, SubscribeOptions: opts, Listener: ln, Logger: e.log})
	})
	s.analytics = start(t, "analytics", func(ctx context.Context, ln net.Listener) error {
		return analytics.Run(ctx, analytics.Deps{Subscriber: e.broker(t), Namespace: e.ns, SubscribeOptions: opts, Listener: ln, Logger: e.log})
	})
	s.notifier = start(t, "notifier", func(ctx context.Context, ln net.Listener) error {
		return notifier.Run(ctx, notifier.Deps{Subscriber: e.broker(t), Namespace: e.ns, SubscribeOptions: opts,
			WelcomeWebhookURL: s.sink + "/hooks/welcome?fail=1", Listener: ln, Logger: e.log})
	})
	s.activity = start(t, "activity", func(ctx context.Context, ln net.Listener) error {
		return activity.Run(ctx, activity.Deps{Publisher: e.broker(t), Namespace: e.ns, Listener: ln, Logger: e.log})
	})
	return s
}

// TestFanOut: every event reaches all three groups; a crashing handler's
// event ends in that group's dead letters only; a welcome webhook that fails
// once is retried.
func TestFanOut(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *env) {
		s := startActivityStack(t, e)
		post := func(user, typ string, attrs map[string]string) {
			t.Helper()
			code, body := call(t, http.MethodPost, s.activity+"/api/activity", events.UserActivity{UserID: user, Type: typ, Attributes: attrs})
			require.Equal(t, http.StatusAccepted, code, "%s", body)
		}
		script := []struct{ user, typ string }{
			{"ada", events.SignedUp}, {"ada", events.LoggedIn}, {"ada", events.ViewedPage}, {"ada", events.Purchased},
			{"bob", events.LoggedIn}, {"bob", events.ViewedPage}, {"bob", events.ViewedPage},
		}
		for _, ev := range script {
			post(ev.user, ev.typ, map[string]string{"source": "e2e"})
		}
		post("bob", events.Purchased, map[string]string{events.SimulateFailureAttribute: events.GroupAnalytics})

		// audit: all 8 events, the crashing one included (only analytics crashes).
		waitFor(t, 20*time.Second, "audit to record every event", func() error {
			var ada, bob struct{ Count int }
			if err := getJSON(s.audit+"/api/audit?user_id=ada", &ada); err != nil {
				return err
			}
			if err := getJSON(s.audit+"/api/audit?user_id=bob", &bob); err != nil {
				return err
			}
			if ada.Count != 4 || bob.Count != 4 {
				return fmt.Errorf("audit has %d events of ada, %d of bob; want 4 and 4", ada.Count, bob.Count)
			}
			return nil
		})
		// analytics: the 7 good events, counted once each.
		var stats analytics.Stats
		waitFor(t, 20*time.Second, "analytics to count", func() error {
			if err := getJSON(s.analytics+"/api/stats", &stats); err != nil {
				return err
			}
			if stats.Events != 7 {
				return fmt.Errorf("analytics counted %d events, want 7", stats.Events)
			}
			return nil
		})
		assert.Equal(t, map[string]int64{events.SignedUp: 1, events.LoggedIn: 2, events.ViewedPage: 3, events.Purchased: 1}, stats.ByType)
		assert.Equal(t, map[string]int64{events.LoggedIn: 1, events.ViewedPage: 2}, stats.ByUser["bob"])

		// the crash: retried, then dead-lettered in analytics only.
		var dead struct {
			Group       string
			DeadLetters []deadletters.Letter `json:"dead_letters"`
		}
		waitFor(t, 20*time.Second, "the crashing event in analytics' dead letters", func() error {
			if err := getJSON(s.analytics+"/api/deadletters", &dead); err != nil {
				return err
			}
			if len(dead.DeadLetters) != 1 {
				return fmt.Errorf("%d dead letters, want 1", len(dead.DeadLetters))
			}
			return nil
		})
		dl := dead.DeadLetters[0]
		assert.Equal(t, events.GroupAnalytics, dl.Group)
		assert.Equal(t, e.ns.Topic(events.UserActivityTopic), dl.Topic)
		assert.Equal(t, 3, dl.Attempts, "retried up to max attempts")
		assert.Contains(t, dl.Reason, "simulated crash")
		assert.Contains(t, dl.Payload, `"user_id":"bob"`)
		for _, other := range []string{s.audit, s.notifier} {
			var none struct {
				DeadLetters []deadletters.Letter `json:"dead_letters"`
			}
			require.NoError(t, getJSON(other+"/api/deadletters", &none))
			assert.Empty(t, none.DeadLetters, "%s has no dead letters", other)
		}

		// notifier: one welcome, for ada, after one refused call.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := s.hooks.Wait(ctx, func(c webhooksink.Call) bool { return c.Path == "/hooks/welcome" })
		require.NoError(t, err, "welcome webhook")
		assert.Contains(t, string(c.Body), `"user_id":"ada"`)
		assert.Equal(t, "welcome", c.Event)
		var sent struct{ Notifications []notifier.Notification }
		waitFor(t, 5*time.Second, "the notifier's record", func() error {
			if err := getJSON(s.notifier+"/api/notifications", &sent); err != nil {
				return err
			}
			if len(sent.Notifications) != 1 {
				return fmt.Errorf("%d notifications, want 1", len(sent.Notifications))
			}
			return nil
		})
		assert.Equal(t, 2, sent.Notifications[0].Attempt, "delivered on the redelivery after the sink refused once")
		time.Sleep(200 * time.Millisecond)
		assert.Len(t, s.hooks.Calls(), 1, "exactly one welcome accepted")
	})
}

// TestActivityBadInput: the API rejects bad input with the right 4xx and a
// message, and publishes nothing.
func TestActivityBadInput(t *testing.T) {
	e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
	s := startActivityStack(t, e)
	for _, tc := range []struct {
		name, method, ctype, body string
		want                      int
		msg                       string
	}{
		{"empty body", "POST", "application/json", "", 400, "body is empty"},
		{"not JSON", "POST", "application/json", "{user_id:", 400, "not valid JSON"},
		{"truncated", "POST", "application/json", `{"user_id":"a"`, 400, "truncated"},
		{"missing user", "POST", "application/json", `{"type":"logged_in"}`, 400, "user_id is required"},
		{"unknown type", "POST", "application/json", `{"user_id":"a","type":"jumped"}`, 400, `type "jumped" is unknown`},
		{"every problem", "POST", "application/json", `{"type":"jumped"}`, 400, `user_id is required; type "jumped" is unknown`},
		{"wrong field type", "POST", "application/json", `{"user_id":7,"type":"logged_in"}`, 400, `field "user_id" is a JSON number, want a JSON string`},
		{"unknown field", "POST", "application/json", `{"user_id":"a","type":"logged_in","color":"red"}`, 400, `field "color" is not allowed`},
		{"bad time", "POST", "application/json", `{"user_id":"a","type":"logged_in","at":"yesterday"}`, 400, "bad request body"},
		{"two objects", "POST", "application/json", `{"user_id":"a","type":"logged_in"}{}`, 400, "more than one"},
		{"too large", "POST", "application/json", `{"user_id":"a","type":"logged_in","attributes":{"x":"` + strings.Repeat("y", 20<<10) + `"}}`, 413, "larger than"},
		{"not JSON content", "POST", "text/plain", `{"user_id":"a","type":"logged_in"}`, 415, "content type"},
		{"wrong method", "GET", "", "", 405, "method GET is not allowed here; allowed: POST"},
		{"long content type", "POST", strings.Repeat("x", 10_000), `{}`, 415, `content type "xxxxxxxx`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, s.activity+"/api/activity", strings.NewReader(tc.body))
			require.NoError(t, err)
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var p httpx.Problem
			require.NoError(t, jsonDecode(resp, &p), "every error is a problem document")
			assert.Equal(t, tc.want, resp.StatusCode)
			assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			assert.Equal(t, tc.want, p.Status)
			assert.Contains(t, p.Detail, tc.msg)
		})
	}
	time.Sleep(100 * time.Millisecond)
	var all struct{ Count int }
	require.NoError(t, getJSON(s.audit+"/api/audit", &all))
	assert.Zero(t, all.Count, "nothing was published")
}

// TestActivityLongValueNotEchoed: a long value the decoder refuses (a bad
// time) is not echoed whole.
func TestActivityLongValueNotEchoed(t *testing.T) {
	e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
	api := start(t, "activity", func(ctx context.Context, ln net.Listener) error {
		return activity.Run(ctx, activity.Deps{Publisher: e.broker(t), Namespace: e.ns, Listener: ln, Logger: e.log})
	})
	code, body := call(t, http.MethodPost, api+"/api/activity", map[string]string{"user_id": "a", "type": "logged_in", "at": strings.Repeat("9", 15_000)})
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Less(t, len(body), 1500, "%.100s", body)
}
