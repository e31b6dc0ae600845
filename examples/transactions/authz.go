package transactions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/proto/authpb"
)

// DefaultAuthTimeout bounds each auth check when Deps.AuthTimeout is not
// set.
const DefaultAuthTimeout = 2 * time.Second

// The auth check of an export: may the user do ActionExport on
// ResourceTransactions?
const (
	ActionExport         = "export"
	ResourceTransactions = "transactions"
)

// UserHeader (HTTP) and UserMetadata (gRPC) name the user asking. The
// examples take the name as given: a real service would take it from an
// authenticated token.
const (
	UserHeader   = "X-User"
	UserMetadata = "x-user"
)

// ErrorDomain is the domain of the errdetails.ErrorInfo in the gRPC errors
// of the auth check.
const ErrorDomain = "examples.switchyard.dev"

// errNoUser: the request names no user.
var errNoUser = errors.New("no user: name the user in the " + UserHeader + " header (gRPC: " + UserMetadata + " metadata)")

// deniedError: the auth service said no.
type deniedError struct{ user, reason string }

func (e *deniedError) Error() string {
	return fmt.Sprintf("%s may not %s %s: %s", e.user, ActionExport, ResourceTransactions, e.reason)
}

// unavailableError: the auth service did not answer; the export is refused.
type unavailableError struct {
	timeout time.Duration
	err     error
}

func (e *unavailableError) Error() string {
	return fmt.Sprintf("the auth service did not answer within %s (%v); exports are refused until it does (fail closed)", e.timeout, status.Convert(e.err).Message())
}

func (e *unavailableError) Unwrap() error { return e.err }

// authorize asks the auth service, within AuthTimeout, whether user may
// export; nil when allowed or when there is no auth service. Its errors are
// errNoUser, *deniedError and *unavailableError.
func (s *api) authorize(ctx context.Context, user string) error {
	if s.Auth == nil {
		return nil
	}
	if user == "" {
		return errNoUser
	}
	ctx, cancel := context.WithTimeout(ctx, s.AuthTimeout)
	defer cancel()
	resp, err := s.Auth.Check(ctx, &authpb.CheckRequest{User: user, Action: ActionExport, Resource: ResourceTransactions})
	if err != nil {
		s.Logger.WarnContext(ctx, "auth check failed; export refused (fail closed)", "user", user, "err", err)
		return &unavailableError{timeout: s.AuthTimeout, err: err}
	}
	if resp.GetDecision() != authpb.Decision_DECISION_ALLOWED {
		s.Logger.InfoContext(ctx, "export denied", "user", user, "reason", resp.GetReason())
		return &deniedError{user: user, reason: resp.GetReason()}
	}
	return nil
}

// AuthError is the body of the HTTP answers of a failed auth check: a
// problem document (RFC 9457, as every error of the API) with two extension
// members.
type AuthError struct {
	httpx.Problem
	// User is the user named, Reason the auth service's reason (403).
	User   string `json:"user,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// writeAuthError answers a failed auth check with status.
func writeAuthError(w http.ResponseWriter, status int, err error, user, reason string) {
	e := AuthError{Problem: httpx.Problem{Status: status, Detail: err.Error()}, User: user, Reason: reason}
	e.Fill()
	httpx.WriteProblemDocument(w, status, e)
}

// authorized runs h once the user named by the X-User header may export:
// otherwise 401, 403 or 503 (with Retry-After) and an AuthError.
func (s *api) authorized(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get(UserHeader)
		err := s.authorize(r.Context(), user)
		var denied *deniedError
		var unavailable *unavailableError
		switch {
		case err == nil:
			h(w, r)
		case errors.Is(err, errNoUser):
			writeAuthError(w, http.StatusUnauthorized, err, "", "")
		case errors.As(err, &denied):
			writeAuthError(w, http.StatusForbidden, err, user, denied.reason)
		case errors.As(err, &unavailable):
			w.Header().Set("Retry-After", strconv.Itoa(5))
			writeAuthError(w, http.StatusServiceUnavailable, err, user, "")
		default:
			httpx.WriteError(w, http.StatusInternalServerError, err.Error())
		}
	})
}

// authorizeRPC is authorize for a gRPC call: the user from the x-user
// metadata; errors as UNAUTHENTICATED, PERMISSION_DENIED or UNAVAILABLE,
// each with an errdetails.ErrorInfo (reasons NO_USER, EXPORT_DENIED,
// AUTH_UNAVAILABLE).
func (s *api) authorizeRPC(ctx context.Context) error {
	var user string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(UserMetadata); len(v) > 0 {
			user = v[0]
		}
	}
	err := s.authorize(ctx, user)
	var denied *deniedError
	var unavailable *unavailableError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNoUser):
		return statusWith(codes.Unauthenticated, err.Error(), &errdetails.ErrorInfo{Reason: "NO_USER", Domain: ErrorDomain})
	case errors.As(err, &denied):
		return statusWith(codes.PermissionDenied, err.Error(), &errdetails.ErrorInfo{Reason: "EXPORT_DENIED", Domain: ErrorDomain,
			Metadata: map[string]string{"user": user, "action": ActionExport, "resource": ResourceTransactions, "reason": denied.reason}})
	case errors.As(err, &unavailable):
		return statusWith(codes.Unavailable, err.Error(), &errdetails.ErrorInfo{Reason: "AUTH_UNAVAILABLE", Domain: ErrorDomain})
	default:
		return status.Error(codes.Internal, err.Error())
	}
}
