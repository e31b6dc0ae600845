package demo_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/demo"
	"github.com/switchyard-go/switchyard/pubsub"
)

// TestScenario runs the demo's scripted flow in-process, as
// `go run ./examples/cmd/demo -scenario` does, on a private mem:// hub and
// free ports; then the demo's GET /metrics holds otelpubsub's metrics of
// the flow, per topic and group.
func TestScenario(t *testing.T) {
	var out bytes.Buffer
	ctx := context.Background()
	d, err := demo.Start(ctx, demo.Config{
		PubSubURL: "mem://demo-test-" + pubsub.NewID()[:8],
		BasePort:  -1,
		Seed:      3000,
		Scenario:  true,
		Out:       &out,
		Logger:    slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	defer func() { assert.NoError(t, d.Close()) }()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = d.Scenario(sctx)
	t.Log("\n" + out.String())
	require.NoError(t, err)
	assert.Contains(t, out.String(), "Scenario passed: 7 of 7")
	assert.Equal(t, 7, strings.Count(out.String(), "✓"))
	for _, name := range []string{"activity", "audit", "analytics", "notifier", "transactions", "exporter-1", "exporter-2", "metrics", "webhook-sink"} {
		assert.Contains(t, out.String(), "  "+name+" ", "the listing names %s", name)
	}
	assert.Contains(t, out.String(), "  metrics       "+d.URL("metrics")+" ")

	// The scenario posted 6 user.activity events; analytics' handler crashes
	// on the last one: 5 attempts (pubsub.DefaultMaxAttempts), 4 retried,
	// then dead-lettered. One export request, completed, its callback sent.
	const (
		topic = "messaging_destination_name"
		group = "messaging_consumer_group_name"
	)
	activity := func(g string) map[string]string {
		return map[string]string{topic: "user.activity", group: g, "messaging_system": "memory"}
	}
	want := []struct {
		metric string
		labels map[string]string
		value  float64
	}{
		{"messaging_client_sent_messages_total", map[string]string{topic: "user.activity", "messaging_system": "memory", "messaging_operation_name": "send"}, 6},
		{"messaging_client_consumed_messages_total", activity("audit"), 6},
		{"switchyard_messages_acked_total", activity("audit"), 6},
		{"messaging_client_consumed_messages_total", activity("notifier"), 6},
		{"switchyard_messages_acked_total", activity("notifier"), 6},
		{"messaging_client_consumed_messages_total", activity("analytics"), 10},
		{"switchyard_messages_acked_total", activity("analytics"), 5},
		{"switchyard_messages_retried_total", activity("analytics"), 4},
		{"switchyard_messages_dead_lettered_total", activity("analytics"), 1},
		{"messaging_process_duration_seconds", map[string]string{topic: "user.activity", group: "audit", "switchyard_handler_outcome": "acked"}, 6},
		{"messaging_process_duration_seconds", map[string]string{topic: "user.activity", group: "analytics", "switchyard_handler_outcome": "retried"}, 4},
		{"switchyard_handlers_in_flight", activity("audit"), 0},
		{"messaging_client_sent_messages_total", map[string]string{topic: "export.requested"}, 1},
		{"switchyard_messages_acked_total", map[string]string{topic: "export.requested", group: "exporter"}, 1},
		{"messaging_client_sent_messages_total", map[string]string{topic: "export.completed"}, 1},
		{"switchyard_messages_acked_total", map[string]string{topic: "export.completed", group: "notifier"}, 1},
	}
	// The counters are incremented as handlers return, which may be just
	// after the scenario saw their effect: poll until they settle.
	var families map[string]*dto.MetricFamily
	var mismatch []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		families = scrape(t, d.URL("metrics")+"/metrics")
		mismatch = nil
		for _, w := range want {
			if got, ok := sample(families, w.metric, w.labels); !ok || got != w.value {
				mismatch = append(mismatch, fmt.Sprintf("%s%v = %v (found %v), want %v", w.metric, w.labels, got, ok, w.value))
			}
		}
		if len(mismatch) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	assert.Empty(t, mismatch)
	for _, m := range families["messaging_client_sent_messages_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			assert.NotEqual(t, "error_type", lp.GetName(), "no publish failed: %v", m)
		}
	}
}

// scrape GETs url and parses the Prometheus text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return families
}

// sample returns the value of the series of metric whose labels include
// labels: a counter's or gauge's value, a histogram's count.
func sample(families map[string]*dto.MetricFamily, metric string, labels map[string]string) (float64, bool) {
	f := families[metric]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range labels {
			match = match && have[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestScenarioReportsMissing: when an expected event cannot arrive (here the
// time is too short for the dead letter's retries), Run fails and names what
// was missing.
func TestScenarioReportsMissing(t *testing.T) {
	var out bytes.Buffer
	err := demo.Run(context.Background(), demo.Config{
		PubSubURL: "mem://demo-test-" + pubsub.NewID()[:8],
		BasePort:  -1,
		Seed:      100,
		Scenario:  true,
		Timeout:   300 * time.Millisecond, // the dead letter's retries take ~0.75s at least
		Out:       &out,
		Logger:    slog.New(slog.DiscardHandler),
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expected events missing")
	assert.Contains(t, out.String(), "✗")
}
