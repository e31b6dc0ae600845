package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/switchyard-go/switchyard/examples/auth"
	"github.com/switchyard-go/switchyard/examples/console"
	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/examples/internal/grpcx"
	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/internal/reports"
	"github.com/switchyard-go/switchyard/examples/proto/authpb"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Port offsets from Config.BasePort of the console and the gRPC listeners.
const (
	ConsolePort = 9
	AuthPort    = 10
	GRPCPort    = 11
	consoleWhat = "the browser console: exports (sync, async with live status) and live events, at /console/"
	authWhat    = "gRPC AuthService.Check (demo policy: ada and carol may export, bob may not)"
	exportRPCs  = "gRPC ExportService: Export, StartExport, GetExportStatus, WatchExport, Download"
)

// extras is what the demo runs for gRPC and the console: the delivery
// reporter on every service's broker, the auth service, the transactions
// service's gRPC listener.
type extras struct {
	brokerOpts []pubsub.BrokerOption // given to every service's broker
	auth       authpb.AuthServiceClient
	authAddr   string
	grpcLn     net.Listener
}

// startExtras starts the reporter (publishing through a broker handle of
// its own) and the auth service, and listens for the transactions
// service's gRPC API. What it starts stops with ctx; d.Close waits for it.
func (d *Demo) startExtras(ctx context.Context, cfg Config, log *slog.Logger) (*extras, error) {
	x := &extras{}
	rep := reports.New(cfg.Namespace, "demo", log, cfg.Namespace.UserActivity().Name())
	x.brokerOpts = []pubsub.BrokerOption{rep.Option()}
	rb, err := cmdutil.OpenBroker(ctx, cfg.PubSubURL, log)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d.onClose(rb.Close)
	d.goRun(func() error { rep.Run(ctx, rb); return nil })

	aln, err := listen(cfg, AuthPort)
	if err != nil {
		return nil, fmt.Errorf("demo: auth: %w", err)
	}
	x.authAddr = aln.Addr().String()
	d.goRun(func() error { return auth.Run(ctx, auth.Deps{Policy: auth.DemoPolicy(), Listener: aln, Logger: log}) })
	cc, err := grpcx.Dial(x.authAddr, nil)
	if err != nil {
		return nil, err
	}
	d.onClose(cc.Close)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := grpcx.WaitServing(wctx, cc, authpb.AuthService_ServiceDesc.ServiceName); err != nil {
		return nil, fmt.Errorf("demo: auth did not start: %w", err)
	}
	x.auth = authpb.NewAuthServiceClient(cc)
	if x.grpcLn, err = listen(cfg, GRPCPort); err != nil {
		return nil, fmt.Errorf("demo: transactions gRPC: %w", err)
	}
	return x, nil
}

// goRun runs f until it returns, as a service of the demo: Close waits for
// it, and its error stops the demo.
func (d *Demo) goRun(f func() error) {
	d.extraWG.Add(1)
	go func() {
		defer d.extraWG.Done()
		if err := f(); err != nil {
			d.extraErr.Store(err)
			d.cancel()
		}
	}()
}

// waitExtras waits for what goRun started, once ctx ended, and returns the
// first error.
func (d *Demo) waitExtras() error {
	d.cancel()
	d.extraWG.Wait()
	if err, ok := d.extraErr.Load().(error); ok {
		return err
	}
	return nil
}

// consoleService is the console on a listener of its own: the page, the
// live delivery reports, and the other services' APIs forwarded (export,
// activity, dead letters), found by name with url once they listen.
func consoleService(ns events.Namespace, log *slog.Logger, url func(name string) string) func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
	return func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
		c, err := console.New(ctx, console.Deps{
			Subscriber: b, Namespace: ns, Logger: log,
			ExportAPI: url("transactions"), ActivityURL: url("activity"),
			DeadLetterAPIs: map[string]string{
				events.GroupAudit: url("audit"), events.GroupAnalytics: url("analytics"),
				events.GroupNotifier: url("notifier"), events.GroupExporter: url("exporter-1"),
			},
		})
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		health.Register(mux)
		mux.Handle("/", c)
		mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
		err = httpx.Serve(ctx, ln, mux, log)
		return errors.Join(err, c.Close())
	}
}

// print lists the gRPC listeners after the HTTP ones.
func (x *extras) print(w io.Writer, urls map[string]string) {
	urls["auth"] = x.authAddr
	urls["transactions-grpc"] = x.grpcLn.Addr().String()
	fmt.Fprintf(w, "  %-13s %-24s %s\n", "auth", "grpc://"+x.authAddr, authWhat)
	fmt.Fprintf(w, "  %-13s %-24s %s\n", "transactions", "grpc://"+x.grpcLn.Addr().String(), exportRPCs)
}
