// Package grpcx is what the example services share around gRPC: a server
// with the standard health and reflection services and OpenTelemetry
// instrumentation, its graceful stop, and a client connection instrumented
// the same way, so that the trace context of a call crosses to the server.
package grpcx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/switchyard-go/switchyard/examples/internal/httpx"
)

// ShutdownTimeout bounds how long Serve waits for running calls (streams
// included) once its context ended, before it cuts them.
const ShutdownTimeout = 10 * time.Second

// telemetry returns otelgrpc's options: spans from tp (the global
// TracerProvider when nil), the trace context in the call's metadata with
// httpx.Propagator (W3C Trace Context until the application sets a global
// propagator), health checks untraced.
func telemetry(tp trace.TracerProvider) []otelgrpc.Option {
	opts := []otelgrpc.Option{
		otelgrpc.WithPropagators(httpx.Propagator),
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
	}
	if tp != nil {
		opts = append(opts, otelgrpc.WithTracerProvider(tp))
	}
	return opts
}

// Server is a gRPC server with the standard health service (reporting
// SERVING for the whole server and for each service registered through
// Register, NOT_SERVING once stopping) and server reflection, instrumented
// with otelgrpc.
type Server struct {
	*grpc.Server
	health *health.Server
	names  []string
}

// NewServer returns a Server whose spans come from tp (the global
// TracerProvider when nil), with opts added.
func NewServer(tp trace.TracerProvider, opts ...grpc.ServerOption) *Server {
	opts = append([]grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(telemetry(tp)...))}, opts...)
	s := &Server{Server: grpc.NewServer(opts...), health: health.NewServer()}
	healthpb.RegisterHealthServer(s.Server, s.health)
	reflection.Register(s.Server)
	return s
}

// Register registers impl as the service desc and marks it SERVING in the
// health service.
func (s *Server) Register(desc *grpc.ServiceDesc, impl any) {
	s.Server.RegisterService(desc, impl)
	s.names = append(s.names, desc.ServiceName)
	s.health.SetServingStatus(desc.ServiceName, healthpb.HealthCheckResponse_SERVING)
}

// Serve serves on ln until ctx ends, then marks every service NOT_SERVING,
// stops gracefully (running calls finish, bounded by ShutdownTimeout, after
// which they are cut) and returns nil; it returns the server's error if it
// stops on its own. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Server.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("grpc server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() { s.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(ShutdownTimeout):
		log.Warn("gRPC calls still running after the shutdown timeout; cutting them", "timeout", ShutdownTimeout)
		s.Stop()
		<-stopped
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpc server on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Listen returns ln when it is not nil, and otherwise a TCP listener on
// addr.
func Listen(ln net.Listener, addr string) (net.Listener, error) {
	if ln != nil {
		return ln, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// Dial returns a client connection to target (host:port), without TLS (the
// examples run on one host or a private network), instrumented with otelgrpc:
// each call has a client span from tp (the global TracerProvider when nil)
// and carries its trace context to the server. It does not connect until
// the first call. Close it when done.
func Dial(target string, tp trace.TracerProvider, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(telemetry(tp)...)),
	}, opts...)
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpc client for %s: %w", target, err)
	}
	return cc, nil
}

// WaitServing waits until the server at cc answers SERVING to a health
// check of service ("" for the whole server), or ctx ends.
func WaitServing(ctx context.Context, cc *grpc.ClientConn, service string) error {
	hc := healthpb.NewHealthClient(cc)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v, %v)", ctx.Err(), resp.GetStatus(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
