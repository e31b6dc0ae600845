package auth

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/examples/internal/grpcx"
	"github.com/switchyard-go/switchyard/examples/internal/service"
	"github.com/switchyard-go/switchyard/examples/proto/authpb"
)

// DefaultAddr is the auth service's listen address when Deps has neither
// Listener nor Addr: loopback only, as every example binary by default;
// give an address such as ":8090" to serve other hosts.
const DefaultAddr = "127.0.0.1:8090"

// Deps is what the auth service runs on.
type Deps struct {
	// Policy decides. Required.
	Policy *Policy
	// Listener is where the gRPC API serves; if nil, Run listens on Addr.
	Listener net.Listener
	// Addr is the listen address when Listener is nil (default DefaultAddr).
	Addr string
	// TracerProvider makes the server spans of incoming calls (default the
	// global TracerProvider).
	TracerProvider trace.TracerProvider
	// Logger logs the service's events (default slog.Default()).
	Logger *slog.Logger
}

// Run serves the gRPC API (authpb.AuthService, health, reflection) until
// ctx ends, then stops gracefully. It returns nil after a clean shutdown.
func Run(ctx context.Context, deps Deps) error {
	if deps.Policy == nil {
		return errors.New("auth: Deps.Policy is required")
	}
	if deps.Addr == "" {
		deps.Addr = DefaultAddr
	}
	log := service.Logger(deps.Logger, "service", "auth")
	ln, err := grpcx.Listen(deps.Listener, deps.Addr)
	if err != nil {
		return err
	}
	srv := grpcx.NewServer(deps.TracerProvider)
	srv.Register(&authpb.AuthService_ServiceDesc, &server{policy: deps.Policy, log: log})
	log.Info("auth gRPC API listening", "addr", ln.Addr().String(), "rules", len(deps.Policy.rules))
	return srv.Serve(ctx, ln, log)
}

// server implements authpb.AuthServiceServer.
type server struct {
	authpb.UnimplementedAuthServiceServer
	policy *Policy
	log    *slog.Logger
}

// Check answers from the policy; an empty field is INVALID_ARGUMENT naming
// it (errdetails.BadRequest).
func (s *server) Check(ctx context.Context, req *authpb.CheckRequest) (*authpb.CheckResponse, error) {
	var bad []*errdetails.BadRequest_FieldViolation
	for _, f := range []struct{ name, v string }{{"user", req.GetUser()}, {"action", req.GetAction()}, {"resource", req.GetResource()}} {
		if f.v == "" {
			bad = append(bad, &errdetails.BadRequest_FieldViolation{Field: f.name, Description: f.name + " is required"})
		}
	}
	if len(bad) > 0 {
		st, _ := status.New(codes.InvalidArgument, bad[0].Description).WithDetails(&errdetails.BadRequest{FieldViolations: bad})
		return nil, st.Err()
	}
	ok, reason := s.policy.Decide(req.GetUser(), req.GetAction(), req.GetResource())
	d := authpb.Decision_DECISION_DENIED
	if ok {
		d = authpb.Decision_DECISION_ALLOWED
	}
	s.log.InfoContext(ctx, "check", "user", req.GetUser(), "action", req.GetAction(), "resource", req.GetResource(), "decision", d.String(), "reason", reason)
	return &authpb.CheckResponse{Decision: d, Reason: reason}, nil
}
