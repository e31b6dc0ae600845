package cmdutil

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/switchyard-go/switchyard/examples/internal/reports"
	"github.com/switchyard-go/switchyard/internal/redact"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// OpenBrokerWith is OpenBroker with broker options of its own (a
// reports.Reporter's Option, say) after the logger and before the
// instrumentation.
func OpenBrokerWith(ctx context.Context, url string, log *slog.Logger, brokerOpts []pubsub.BrokerOption, opts ...otelpubsub.Option) (pubsub.Broker, error) {
	opts = append([]otelpubsub.Option{otelpubsub.WithSystem(otelpubsub.SystemOf(url))}, opts...)
	all := append([]pubsub.BrokerOption{pubsub.WithLogger(log)}, brokerOpts...)
	b, err := transport.Open(ctx, url, append(all, otelpubsub.Instrument(opts...))...)
	if err != nil {
		return nil, fmt.Errorf("open broker %s: %w", redact.URL(url), err)
	}
	return b, nil
}

// newReporter returns the binary's delivery reporter: what its consumer
// groups do with user.activity is published on delivery.reports for the
// console (package reports), named after the binary and its pid.
func (c *Common) newReporter(log *slog.Logger) *reports.Reporter {
	name := fmt.Sprintf("%s:%d", filepath.Base(os.Args[0]), os.Getpid())
	return reports.New(c.NS(), name, log, c.NS().UserActivity().Name())
}

// Reporting reports whether the binaries publish delivery reports
// (events.DeliveryReport) for the console: REPORT_DELIVERIES unset or not
// "false".
func Reporting() bool { return os.Getenv("REPORT_DELIVERIES") != "false" }
