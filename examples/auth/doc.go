// Package auth is the auth service of the examples: a gRPC service that
// answers, synchronously, whether a user may do an action on a resource
// (authpb.AuthService.Check → allowed or denied, with the reason). The
// transactions service asks it, with a deadline, before every export, over
// HTTP and gRPC alike, and refuses the export when it does not answer (fail
// closed).
//
// Policies come from a small text file, one rule a line (see ParsePolicy):
//
//	# user  action  resource
//	ada     export  transactions
//	bob     read    transactions
//	carol   *       *
//
// Anything no rule allows is denied. DemoPolicy is the demo's: ada and carol
// may export, bob may not.
//
// The server also answers the standard gRPC health protocol
// (grpc.health.v1.Health: SERVING while it runs) and server reflection
// (grpcurl -plaintext localhost:8090 list), and continues the trace context
// of incoming calls (otelgrpc).
//
// Run it with Run; the binary is examples/cmd/auth.
package auth
