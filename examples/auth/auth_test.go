package auth_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/examples/auth"
	"github.com/switchyard-go/switchyard/examples/internal/grpcx"
	"github.com/switchyard-go/switchyard/examples/proto/authpb"
)

func TestParsePolicy(t *testing.T) {
	p, err := auth.ParsePolicy("p.txt", strings.NewReader("# comment\n\nada export transactions # trailing\n  bob\tread\t*\n* ping *\n"))
	require.NoError(t, err)
	assert.Equal(t, []auth.Rule{
		{User: "ada", Action: "export", Resource: "transactions", Line: 3},
		{User: "bob", Action: "read", Resource: "*", Line: 4},
		{User: "*", Action: "ping", Resource: "*", Line: 5},
	}, p.Rules())
	for _, tc := range []struct {
		user, action, resource string
		allowed                bool
		reason                 string
	}{
		{"ada", "export", "transactions", true, "p.txt:3 allows ada export transactions"},
		{"ada", "export", "accounts", false, "no rule of p.txt allows ada to export accounts"},
		{"bob", "read", "anything", true, "p.txt:4 allows bob read *"},
		{"bob", "export", "transactions", false, "no rule of p.txt allows bob to export transactions"},
		{"zoe", "ping", "x", true, "p.txt:5 allows * ping *"},
		{"Ada", "export", "transactions", false, "no rule of p.txt allows Ada to export transactions"},
	} {
		ok, reason := p.Decide(tc.user, tc.action, tc.resource)
		assert.Equal(t, tc.allowed, ok, "%s %s %s", tc.user, tc.action, tc.resource)
		assert.Equal(t, tc.reason, reason)
	}

	_, err = auth.ParsePolicy("bad.txt", strings.NewReader("ada export\nok a b\nbob read x y\n"))
	require.Error(t, err)
	assert.Equal(t, "auth: policy bad.txt:1: 2 fields, want 3: user action resource\nbad.txt:3: 4 fields, want 3: user action resource", err.Error())
}

func TestDemoPolicy(t *testing.T) {
	p := auth.DemoPolicy()
	for user, want := range map[string]bool{"ada": true, "bob": false, "carol": true, "mallory": false} {
		ok, _ := p.Decide(user, "export", "transactions")
		assert.Equal(t, want, ok, "%s export", user)
	}
	ok, _ := p.Decide("bob", "read", "transactions")
	assert.True(t, ok)
}

// TestCheck calls the running service over gRPC: decisions with reasons,
// INVALID_ARGUMENT naming every empty field, health SERVING, and NOT_SERVING
// then refused calls once stopped.
func TestCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- auth.Run(ctx, auth.Deps{Policy: auth.DemoPolicy(), Listener: ln}) }()
	cc, err := grpcx.Dial(ln.Addr().String(), nil)
	require.NoError(t, err)
	defer cc.Close()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	require.NoError(t, grpcx.WaitServing(wctx, cc, authpb.AuthService_ServiceDesc.ServiceName))
	c := authpb.NewAuthServiceClient(cc)

	resp, err := c.Check(wctx, &authpb.CheckRequest{User: "ada", Action: "export", Resource: "transactions"})
	require.NoError(t, err)
	assert.Equal(t, authpb.Decision_DECISION_ALLOWED, resp.GetDecision())
	assert.Equal(t, "demo-policy.txt:4 allows ada export transactions", resp.GetReason())
	resp, err = c.Check(wctx, &authpb.CheckRequest{User: "bob", Action: "export", Resource: "transactions"})
	require.NoError(t, err)
	assert.Equal(t, authpb.Decision_DECISION_DENIED, resp.GetDecision())
	assert.Equal(t, "no rule of demo-policy.txt allows bob to export transactions", resp.GetReason())

	// Server reflection lists the services.
	rs, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(wctx)
	require.NoError(t, err)
	require.NoError(t, rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}))
	ans, err := rs.Recv()
	require.NoError(t, err)
	var names []string
	for _, sv := range ans.GetListServicesResponse().GetService() {
		names = append(names, sv.GetName())
	}
	assert.ElementsMatch(t, []string{"switchyard.examples.auth.v1.AuthService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}, names)
	require.NoError(t, rs.CloseSend())

	_, err = c.Check(wctx, &authpb.CheckRequest{Action: "export"})
	st := status.Convert(err)
	assert.Equal(t, codes.InvalidArgument, st.Code())
	assert.Equal(t, "user is required", st.Message())
	require.Len(t, st.Details(), 1)
	br, ok := st.Details()[0].(*errdetails.BadRequest)
	require.True(t, ok, "%T", st.Details()[0])
	var fields []string
	for _, v := range br.GetFieldViolations() {
		fields = append(fields, v.GetField())
	}
	assert.Equal(t, []string{"user", "resource"}, fields)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer ccancel()
	_, err = c.Check(cctx, &authpb.CheckRequest{User: "ada", Action: "export", Resource: "transactions"})
	assert.Equal(t, codes.Unavailable, status.Code(err), "stopped: %v", err)
	_, err = healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{})
	assert.Equal(t, codes.Unavailable, status.Code(err))
}

func TestRunNeedsPolicy(t *testing.T) {
	assert.EqualError(t, auth.Run(context.Background(), auth.Deps{}), "auth: Deps.Policy is required")
}
