package transactions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/grpcx"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/proto/exportpb"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
)

// chunkSize is the size of the CsvChunks the gRPC API sends (the last may
// be smaller; a chunk of Export ends at a row boundary, so it may be a row
// larger).
const chunkSize = 32 << 10

func (d *Deps) setGRPCDefaults() {
	if d.AuthTimeout <= 0 {
		d.AuthTimeout = DefaultAuthTimeout
	}
	if d.Subscriber == nil {
		if sub, ok := d.Publisher.(pubsub.Subscriber); ok {
			if _, ok := d.Publisher.(pubsub.GroupDeleter); ok {
				d.Subscriber = sub
			}
		}
	}
	if d.Instance == "" {
		d.Instance = pubsub.NewID()[:10]
	}
}

// startGRPC starts what runs beside the HTTP API: the status watcher (when
// there is a Subscriber) and the gRPC server (when GRPCListener or GRPCAddr
// is set). It listens for HTTP first when Listener is nil, so that a port in
// use fails before anything runs. stop stops both and waits for them.
func (s *api) startGRPC(ctx context.Context) (stop func() error, err error) {
	ctx, cancel := context.WithCancel(ctx)
	var stops []func() error
	stop = func() error {
		cancel()
		var errs []error
		for i := len(stops) - 1; i >= 0; i-- {
			errs = append(errs, stops[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			_ = stop()
		}
	}()
	if s.Subscriber != nil {
		s.watch = startWatcher(ctx, s.Subscriber, s.Namespace, s.Instance, s.Logger)
		stops = append(stops, s.watch.close)
	}
	if s.GRPCListener == nil && s.GRPCAddr == "" {
		return stop, nil
	}
	if s.Listener, err = httpx.Listen(s.Listener, s.Addr); err != nil {
		return nil, err
	}
	ln, err := grpcx.Listen(s.GRPCListener, s.GRPCAddr)
	if err != nil {
		return nil, err
	}
	srv := grpcx.NewServer(s.TracerProvider)
	srv.Register(&exportpb.ExportService_ServiceDesc, &grpcAPI{api: s})
	s.Logger.Info("transactions gRPC API listening", "addr", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, s.Logger) }()
	stops = append(stops, func() error { return <-done })
	return stop, nil
}

// grpcAPI implements exportpb.ExportServiceServer on the service.
type grpcAPI struct {
	exportpb.UnimplementedExportServiceServer
	api *api
}

// statusWith returns a status error with details.
func statusWith(c codes.Code, msg string, details ...protoadapt.MessageV1) error {
	st, err := status.New(c, msg).WithDetails(details...)
	if err != nil {
		return status.Error(c, msg)
	}
	return st.Err()
}

// invalid is INVALID_ARGUMENT naming the field (errdetails.BadRequest).
func invalid(field, msg string) error {
	return statusWith(codes.InvalidArgument, field+": "+msg,
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: msg}}})
}

// dateRange validates req's dates, naming the proto field at fault.
func dateRange(req *exportpb.ExportRequest) (from, to time.Time, err error) {
	for _, f := range []struct{ name, v string }{{"start_date", req.GetStartDate()}, {"end_date", req.GetEndDate()}} {
		if f.v == "" {
			return from, to, invalid(f.name, "is required (YYYY-MM-DD)")
		}
		if _, err := time.Parse(txstore.DateLayout, f.v); err != nil {
			return from, to, invalid(f.name, fmt.Sprintf("%q is not a date of the form YYYY-MM-DD", f.v))
		}
	}
	from, to, err = txstore.ParseDateRange(req.GetStartDate(), req.GetEndDate())
	if err != nil {
		return from, to, invalid("start_date", fmt.Sprintf("%s is after end_date %s", req.GetStartDate(), req.GetEndDate()))
	}
	return from, to, nil
}

// ticket validates a ticket and returns its export request: NOT_FOUND
// (errdetails.ResourceInfo) for an unknown RID.
func (g *grpcAPI) ticket(ctx context.Context, t *exportpb.ExportTicket) (txstore.Export, error) {
	if t.GetRid() == "" {
		return txstore.Export{}, invalid("rid", "is required")
	}
	e, err := g.api.Store.Export(ctx, t.GetRid())
	if errors.Is(err, txstore.ErrNotFound) {
		return e, statusWith(codes.NotFound, fmt.Sprintf("no export request with rid %q", t.GetRid()),
			&errdetails.ResourceInfo{ResourceType: "export request", ResourceName: t.GetRid(), Description: "unknown rid"})
	}
	if err != nil {
		return e, rpcError(ctx, err)
	}
	return e, nil
}

// rpcError maps a storage or context error: context errors to their codes,
// others to UNAVAILABLE (the database did not answer; try again).
func rpcError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	return status.Error(codes.Unavailable, err.Error())
}

// Export streams the CSV of the range from the database cursor. Cancelling
// the call (or its deadline) cancels the query: the cursor stops.
func (g *grpcAPI) Export(req *exportpb.ExportRequest, stream exportpb.ExportService_ExportServer) error {
	ctx := stream.Context()
	if err := g.api.authorizeRPC(ctx); err != nil {
		return err
	}
	from, to, err := dateRange(req)
	if err != nil {
		return err
	}
	cw := &chunkWriter{send: stream.Send}
	rows, err := g.api.Store.WriteCSV(ctx, cw, from, to, 1, func(n int64) error {
		cw.rows = n
		return cw.maybeSend()
	})
	if err == nil {
		cw.rows = rows
		err = cw.flush()
	}
	if err != nil {
		g.api.Logger.InfoContext(ctx, "gRPC export stopped", "start", req.GetStartDate(), "end", req.GetEndDate(), "rows", rows, "err", err)
		return rpcError(ctx, err)
	}
	g.api.Logger.InfoContext(ctx, "gRPC export served", "start", req.GetStartDate(), "end", req.GetEndDate(), "rows", rows)
	return nil
}

// chunkWriter collects CSV bytes and sends them in chunks of about
// chunkSize, each at a row boundary with the rows sent so far.
type chunkWriter struct {
	send func(*exportpb.CsvChunk) error
	buf  []byte
	rows int64
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *chunkWriter) maybeSend() error {
	if len(c.buf) < chunkSize {
		return nil
	}
	return c.flush()
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	err := c.send(&exportpb.CsvChunk{Data: c.buf, Rows: c.rows})
	c.buf = nil // the sent message owns the bytes
	return err
}

// StartExport stores the request and publishes export.requested, as POST
// /api/Export does.
func (g *grpcAPI) StartExport(ctx context.Context, req *exportpb.ExportRequest) (*exportpb.ExportTicket, error) {
	if err := g.api.authorizeRPC(ctx); err != nil {
		return nil, err
	}
	if _, _, err := dateRange(req); err != nil {
		return nil, err
	}
	if cb := req.GetCallbackUrl(); cb != "" {
		if _, err := g.api.CallbackPolicy.CheckURL(cb); err != nil {
			return nil, invalid("callback_url", err.Error())
		}
	}
	rid, _, err := g.api.store(ctx, ExportRequest{StartDate: req.GetStartDate(), EndDate: req.GetEndDate(), CallbackURL: req.GetCallbackUrl()}, "")
	if err != nil {
		return nil, rpcError(ctx, err)
	}
	return &exportpb.ExportTicket{Rid: rid}, nil
}

// GetExportStatus returns the stored status.
func (g *grpcAPI) GetExportStatus(ctx context.Context, t *exportpb.ExportTicket) (*exportpb.ExportStatus, error) {
	e, err := g.ticket(ctx, t)
	if err != nil {
		return nil, err
	}
	st, err := g.api.liveStatus(ctx, e)
	if err != nil {
		return nil, rpcError(ctx, err)
	}
	return toProto(st), nil
}

// WatchExport sends the stored status, then each change the exporters
// report through the broker, until the final one.
func (g *grpcAPI) WatchExport(t *exportpb.ExportTicket, stream exportpb.ExportService_WatchExportServer) error {
	ctx := stream.Context()
	if g.api.watch == nil {
		return status.Error(codes.Unimplemented, "live status needs a broker subscription; poll GetExportStatus")
	}
	e, err := g.ticket(ctx, t)
	if err != nil {
		return err
	}
	err = g.api.watch.follow(ctx, t.GetRid(), func() (liveStatus, error) {
		return g.api.liveStatus(ctx, e)
	}, func(st liveStatus) error {
		return stream.Send(toProto(st))
	}, 0, nil)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errStopping):
		return status.Error(codes.Unavailable, err.Error())
	default:
		return rpcError(ctx, err)
	}
}

// Download streams a completed export's file: FAILED_PRECONDITION
// (errdetails.PreconditionFailure) before it completed.
func (g *grpcAPI) Download(t *exportpb.ExportTicket, stream exportpb.ExportService_DownloadServer) error {
	ctx := stream.Context()
	e, err := g.ticket(ctx, t)
	if err != nil {
		return err
	}
	if e.Status != events.StatusCompleted {
		return statusWith(codes.FailedPrecondition, fmt.Sprintf("export %s is %s, not completed", e.RID, e.Status),
			&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{
				Type: "STATUS", Subject: "export/" + e.RID, Description: "the export is " + e.Status + "; download once it is completed",
			}}})
	}
	f, err := g.api.Storage.Open(ctx, e.ObjectKey)
	if errors.Is(err, storage.ErrNotFound) {
		return statusWith(codes.NotFound, fmt.Sprintf("the file of export %s is no longer stored", e.RID),
			&errdetails.ResourceInfo{ResourceType: "export file", ResourceName: e.RID, Description: "removed from storage"})
	}
	if err != nil {
		return rpcError(ctx, err)
	}
	defer f.Close()
	buf := make([]byte, chunkSize)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			if serr := stream.Send(&exportpb.CsvChunk{Data: buf[:n]}); serr != nil {
				return serr
			}
			buf = make([]byte, chunkSize) // the sent message owns the bytes
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return rpcError(ctx, err)
		}
	}
}

var states = map[string]exportpb.State{
	events.StatusPending:   exportpb.State_STATE_PENDING,
	events.StatusRunning:   exportpb.State_STATE_RUNNING,
	events.StatusCompleted: exportpb.State_STATE_COMPLETED,
	events.StatusFailed:    exportpb.State_STATE_FAILED,
}

func toProto(st liveStatus) *exportpb.ExportStatus {
	return &exportpb.ExportStatus{Rid: st.RID, State: states[st.Status], Progress: st.Progress, DownloadUrl: st.URL, Error: st.Error, Total: st.Total}
}
