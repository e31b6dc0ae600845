// Command pubsub-emulator runs pstest, the in-memory Pub/Sub fake of
// cloud.google.com/go/pubsub/v2, as a gRPC server on a port, so that the
// example services can run on gcppubsub:// across processes without a Google
// account:
//
//	go run ./examples/cmd/pubsub-emulator -port 8085 &
//	export PUBSUB_EMULATOR_HOST=localhost:8085 PUBSUB_URL=gcppubsub://demo-project
//
// Any project ID works. Everything is kept in memory and lost on exit;
// pstest redelivers without a retry policy, has no flow control, delivers
// at most one message per stream every 10ms (about 90 messages/s for one
// subscriber, less for large backlogs; more streams with
// gcppubsub://PROJECT?streams=4), keeps unacked messages for 10 minutes,
// and takes requests of at most 4 MB (see "Emulators" in package
// transport/gcppubsub). It exits cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"cloud.google.com/go/pubsub/v2/pstest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pubsub-emulator:", err)
		stop()
		os.Exit(1)
	}
}

// run serves until ctx is done, then stops the server.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pubsub-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "localhost", "host or IP address to listen on (0.0.0.0 for all interfaces)")
	port := fs.Int("port", 8085, "port to listen on; 0 picks a free one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	srv, err := listen(net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	_, gotPort, _ := net.SplitHostPort(srv.Addr)
	fmt.Fprintf(stdout, "Pub/Sub emulator (pstest) listening on %s\n", srv.Addr)
	fmt.Fprintf(stdout, "Point services at it, with any project ID:\n\n")
	fmt.Fprintf(stdout, "\texport PUBSUB_EMULATOR_HOST=%s PUBSUB_URL=gcppubsub://demo-project\n\n", net.JoinHostPort(*host, gotPort))
	fmt.Fprintf(stdout, "Stop with Ctrl-C.\n")
	<-ctx.Done()
	fmt.Fprintf(stdout, "Stopping the emulator; its topics and messages are gone.\n")
	return srv.Close()
}

// listen starts pstest on addr, turning its panic on a failed listen into an
// error.
func listen(addr string) (srv *pstest.Server, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("listen on %s: %v", addr, v)
		}
	}()
	return pstest.NewServerWithAddress(addr), nil
}
