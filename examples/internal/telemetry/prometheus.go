// Package telemetry gives the example binaries their metrics: an
// OpenTelemetry MeterProvider whose instruments (otelpubsub's, passed with
// otelpubsub.WithMeterProvider) are served at GET /metrics in the Prometheus
// text format, from a registry of its own.
package telemetry

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Metrics is a MeterProvider and the handler that serves its metrics.
type Metrics struct {
	// Provider records the instruments made from it; pass it to
	// otelpubsub.WithMeterProvider.
	Provider *sdkmetric.MeterProvider
	// Handler serves the metrics in the Prometheus text format (GET
	// /metrics): Provider's, and the Go runtime's and process's
	// (go_*, process_*).
	Handler http.Handler
}

// NewMetrics returns a MeterProvider read by an OpenTelemetry Prometheus
// exporter on a private prometheus.Registry (not the global one), and the
// promhttp handler of that registry. Names follow the exporter's default
// translation: dots become underscores, with the unit and _total suffixes,
// so messaging.client.consumed.messages is
// messaging_client_consumed_messages_total and its attributes are labels
// such as messaging_destination_name.
func NewMetrics() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("telemetry: go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("telemetry: process collector: %w", err)
	}
	return &Metrics{
		Provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		Handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
	}, nil
}

// Shutdown stops the MeterProvider; the handler then serves the runtime
// metrics only.
func (m *Metrics) Shutdown(ctx context.Context) error { return m.Provider.Shutdown(ctx) }
