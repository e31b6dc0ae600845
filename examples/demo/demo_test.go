package demo_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/demo"
	"github.com/switchyard-go/switchyard/pubsub"
)

// TestScenario runs the demo's scripted flow in-process, as
// `go run ./examples/cmd/demo -scenario` does, on a private mem:// hub and
// free ports.
func TestScenario(t *testing.T) {
	var out bytes.Buffer
	err := demo.Run(context.Background(), demo.Config{
		PubSubURL: "mem://demo-test-" + pubsub.NewID()[:8],
		BasePort:  -1,
		Seed:      3000,
		Scenario:  true,
		Timeout:   30 * time.Second,
		Out:       &out,
		Logger:    slog.New(slog.DiscardHandler),
	})
	t.Log("\n" + out.String())
	require.NoError(t, err)
	assert.Contains(t, out.String(), "Scenario passed: 7 of 7")
	assert.Equal(t, 7, strings.Count(out.String(), "✓"))
	for _, name := range []string{"activity", "audit", "analytics", "notifier", "transactions", "exporter-1", "exporter-2", "webhook-sink"} {
		assert.Contains(t, out.String(), "  "+name+" ", "the listing names %s", name)
	}
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
