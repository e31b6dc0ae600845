package e2e_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/activity"
	"github.com/switchyard-go/switchyard/examples/analytics"
	"github.com/switchyard-go/switchyard/examples/audit"
	"github.com/switchyard-go/switchyard/examples/events"
)

// TestAnalyticsScaleOut: two analytics instances in one group split its
// events (competing consumers), each event counted by exactly one of them,
// while audit, another group, still gets every event.
func TestAnalyticsScaleOut(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *env) {
		auditURL := start(t, "audit", func(ctx context.Context, ln net.Listener) error {
			return audit.Run(ctx, audit.Deps{Subscriber: e.broker(t), Namespace: e.ns, Listener: ln, Logger: e.log})
		})
		var instances []string
		for _, name := range []string{"analytics-a", "analytics-b"} {
			instances = append(instances, start(t, name, func(ctx context.Context, ln net.Listener) error {
				return analytics.Run(ctx, analytics.Deps{Subscriber: e.broker(t), Namespace: e.ns, Instance: name, Listener: ln, Logger: e.log})
			}))
		}
		api := start(t, "activity", func(ctx context.Context, ln net.Listener) error {
			return activity.Run(ctx, activity.Deps{Publisher: e.broker(t), Namespace: e.ns,
				Groups: []string{events.GroupAudit, events.GroupAnalytics}, Listener: ln, Logger: e.log})
		})
		const n = 40
		for i := range n {
			code, body := call(t, http.MethodPost, api+"/api/activity", events.UserActivity{UserID: fmt.Sprintf("user-%d", i), Type: events.ViewedPage})
			require.Equal(t, http.StatusAccepted, code, "%s", body)
		}
		counts := make([]int64, len(instances))
		waitFor(t, 20*time.Second, "the two instances to count every event", func() error {
			var sum int64
			for i, u := range instances {
				var s analytics.Stats
				if err := getJSON(u+"/api/stats", &s); err != nil {
					return err
				}
				counts[i] = s.Events
				sum += s.Events
			}
			if sum != n {
				return fmt.Errorf("counted %v, %d in all; want %d", counts, sum, n)
			}
			return nil
		})
		if e.balancesMembers() {
			for i, c := range counts {
				assert.Positive(t, c, "instance %d took part of the work: %v", i, counts)
			}
		} else {
			t.Logf("events per instance: %v (the emulator does not balance a group's members)", counts)
		}
		waitFor(t, 20*time.Second, "audit, a group of its own, to get every event", func() error {
			var all struct{ Count int }
			if err := getJSON(auditURL+"/api/audit?limit=1000", &all); err != nil {
				return err
			}
			if all.Count != n {
				return fmt.Errorf("audit has %d events, want %d", all.Count, n)
			}
			return nil
		})
		time.Sleep(200 * time.Millisecond)
		var sum int64
		for _, u := range instances {
			var s analytics.Stats
			require.NoError(t, getJSON(u+"/api/stats", &s))
			sum += s.Events
		}
		assert.Equal(t, int64(n), sum, "no event counted twice")
	})
}
