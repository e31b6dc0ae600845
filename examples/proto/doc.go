// Package proto holds the gRPC contracts of the example services and their
// generated Go code: export.proto (package exportpb: the transactions
// service's export API) and auth.proto (package authpb: the auth service).
// Services share these, as they share package events for the broker,
// rather than each other's code.
//
// The generated code is committed; regenerate it after editing a .proto
// with
//
//	go generate ./examples/proto
//
// which needs protoc (Debian's protobuf-compiler, 3.21.12) and the plugins
// from the Go module proxy at the versions the generated files name:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//
// Building and testing need none of these.
package proto

//go:generate protoc --proto_path=. --go_out=. --go_opt=module=github.com/switchyard-go/switchyard/examples/proto --go-grpc_out=. --go-grpc_opt=module=github.com/switchyard-go/switchyard/examples/proto export.proto auth.proto
