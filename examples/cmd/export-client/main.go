// Command export-client exports transactions over the transactions
// service's gRPC API (examples/proto/export.proto): it requests an
// asynchronous export (StartExport), shows a progress bar fed by
// WatchExport (the exporter's progress, pushed through the broker), then
// downloads the file (Download) and writes it. With -sync it streams the
// synchronous Export instead.
//
//	go run ./examples/cmd/export-client -user ada -start 2025-01-01 -end 2025-06-30
//	go run ./examples/cmd/export-client -user ada -sync -o january.csv -start 2025-01-01 -end 2025-01-31
//	go run ./examples/cmd/export-client -user bob ...   # denied: bob may not export
//
// It exits 0 once the file is written, 1 on an error (the gRPC status, its
// code and details on stderr), 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/examples/internal/grpcx"
	"github.com/switchyard-go/switchyard/examples/proto/exportpb"
	"github.com/switchyard-go/switchyard/examples/transactions"
)

// config is the command line.
type config struct {
	addr, user, start, end, out string
	sync                        bool
	timeout                     time.Duration
}

func main() {
	var c config
	fs := flag.NewFlagSet("export-client", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", envOr("EXPORT_GRPC_ADDR", "localhost:9095"), "the transactions service's gRPC address (env EXPORT_GRPC_ADDR)")
	fs.StringVar(&c.user, "user", envOr("EXPORT_USER", "ada"), "the user asking, sent as x-user metadata (env EXPORT_USER)")
	fs.StringVar(&c.start, "start", "2025-01-01", "first day, YYYY-MM-DD")
	fs.StringVar(&c.end, "end", "2025-01-31", "last day, YYYY-MM-DD (inclusive)")
	fs.StringVar(&c.out, "o", "", "file to write (default transactions_START_END.csv)")
	fs.BoolVar(&c.sync, "sync", false, "stream the synchronous Export instead of StartExport, WatchExport, Download")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "error:", describe(err))
		stop()
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// run does the export and writes the file, reporting to out and the
// progress bar to bar.
func run(ctx context.Context, c config, out, bar io.Writer) error {
	if c.out == "" {
		c.out = fmt.Sprintf("transactions_%s_%s.csv", c.start, c.end)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cc, err := grpcx.Dial(c.addr, nil)
	if err != nil {
		return err
	}
	defer cc.Close()
	client := exportpb.NewExportServiceClient(cc)
	ctx = metadata.AppendToOutgoingContext(ctx, transactions.UserMetadata, c.user)
	req := &exportpb.ExportRequest{StartDate: c.start, EndDate: c.end}

	var recv func() (*exportpb.CsvChunk, error)
	if c.sync {
		stream, err := client.Export(ctx, req)
		if err != nil {
			return err
		}
		recv = stream.Recv
	} else {
		ticket, err := client.StartExport(ctx, req)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "export %s requested by %s: %s … %s\n", ticket.GetRid(), c.user, c.start, c.end)
		final, err := watch(ctx, client, ticket, bar)
		if err != nil {
			return err
		}
		if final.GetState() != exportpb.State_STATE_COMPLETED {
			return fmt.Errorf("export %s %s: %s", final.GetRid(), final.GetState(), final.GetError())
		}
		fmt.Fprintf(out, "export %s completed: %d rows\n", final.GetRid(), final.GetProgress())
		stream, err := client.Download(ctx, ticket)
		if err != nil {
			return err
		}
		recv = stream.Recv
	}
	n, rows, err := write(c.out, recv)
	if err != nil {
		return err
	}
	if c.sync {
		fmt.Fprintf(out, "wrote %s: %d bytes, %d rows (synchronous)\n", c.out, n, rows)
	} else {
		fmt.Fprintf(out, "wrote %s: %d bytes\n", c.out, n)
	}
	return nil
}

// watch follows the export with WatchExport, drawing a progress bar, and
// returns its final status.
func watch(ctx context.Context, client exportpb.ExportServiceClient, ticket *exportpb.ExportTicket, w io.Writer) (*exportpb.ExportStatus, error) {
	stream, err := client.WatchExport(ctx, ticket)
	if err != nil {
		return nil, err
	}
	pb := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(w), progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(40), progressbar.OptionSetDescription("pending"), progressbar.OptionThrottle(50*time.Millisecond))
	var last *exportpb.ExportStatus
	for {
		st, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		last = st
		if st.GetTotal() > 0 {
			pb.ChangeMax64(st.GetTotal())
		}
		pb.Describe(stateName(st.GetState()))
		_ = pb.Set64(st.GetProgress())
	}
	_ = pb.Finish()
	fmt.Fprintln(w)
	if last == nil {
		return nil, errors.New("WatchExport ended without a status")
	}
	return last, nil
}

func stateName(s exportpb.State) string {
	switch s {
	case exportpb.State_STATE_PENDING:
		return "pending"
	case exportpb.State_STATE_RUNNING:
		return "running"
	case exportpb.State_STATE_COMPLETED:
		return "completed"
	case exportpb.State_STATE_FAILED:
		return "failed"
	}
	return s.String()
}

// write writes the chunks to path (through a temporary file in the same
// directory, renamed once complete) and returns the bytes and, for Export's
// chunks, the rows.
func write(path string, recv func() (*exportpb.CsvChunk, error)) (n, rows int64, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".export-*.csv")
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	for {
		c, err := recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, rows, err
		}
		k, err := f.Write(c.GetData())
		n += int64(k)
		if err != nil {
			return n, rows, err
		}
		rows = c.GetRows()
	}
	if err := f.Close(); err != nil {
		return n, rows, err
	}
	return n, rows, os.Rename(f.Name(), path)
}

// describe renders a gRPC error with its code and details.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	s := fmt.Sprintf("%s: %s", st.Code(), st.Message())
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			s += fmt.Sprintf(" [%s]", d.GetReason())
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				s += fmt.Sprintf(" [field %s: %s]", v.GetField(), v.GetDescription())
			}
		}
	}
	return s
}
