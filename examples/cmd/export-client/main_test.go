package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/examples/auth"
	"github.com/switchyard-go/switchyard/examples/exporter"
	"github.com/switchyard-go/switchyard/examples/internal/grpcx"
	"github.com/switchyard-go/switchyard/examples/proto/authpb"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/transactions"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// serve runs run on a loopback listener until the test ends.
func serve(t *testing.T, run func(ctx context.Context, ln net.Listener) error) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return ln.Addr().String()
}

// TestExportClient runs the client against auth, the transactions service
// and an exporter on mem://: the async export (with its progress bar)
// writes the same file as the sync one, byte for byte, and bob is refused.
func TestExportClient(t *testing.T) {
	ctx := context.Background()
	url := "mem://export-client-" + pubsub.NewID()[:8]
	open := func() pubsub.Broker {
		b, err := transport.Open(ctx, url)
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	store, err := txstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "tx.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	_, err = store.Seed(ctx, 1500, nil)
	require.NoError(t, err)
	files, err := storage.NewDir(t.TempDir())
	require.NoError(t, err)

	authAddr := serve(t, func(ctx context.Context, ln net.Listener) error {
		return auth.Run(ctx, auth.Deps{Policy: auth.DemoPolicy(), Listener: ln})
	})
	cc, err := grpcx.Dial(authAddr, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	pub := open()
	serve(t, func(ctx context.Context, ln net.Listener) error {
		return transactions.Run(ctx, transactions.Deps{Store: store, Storage: files, Publisher: pub, Listener: ln, GRPCListener: gln,
			Auth: authpb.NewAuthServiceClient(cc)})
	})
	worker := open()
	serve(t, func(ctx context.Context, ln net.Listener) error {
		return exporter.Run(ctx, exporter.Deps{Broker: worker, Store: store, Storage: files, Groups: []string{}, ProgressEvery: 50, Listener: ln})
	})
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, grpcx.WaitServing(wctx, mustDial(t, gln.Addr().String()), ""))

	dir := t.TempDir()
	cfg := config{addr: gln.Addr().String(), user: "ada", start: "2025-01-01", end: "2025-04-30", timeout: 20 * time.Second}
	var out, bar bytes.Buffer
	cfg.out = filepath.Join(dir, "async.csv")
	require.NoError(t, run(ctx, cfg, &out, &bar))
	assert.Contains(t, out.String(), "completed:")
	assert.Contains(t, bar.String(), "completed", "the bar showed the states")
	cfg.sync, cfg.out = true, filepath.Join(dir, "sync.csv")
	require.NoError(t, run(ctx, cfg, &out, &bar))
	async, err := os.ReadFile(filepath.Join(dir, "async.csv"))
	require.NoError(t, err)
	sync, err := os.ReadFile(filepath.Join(dir, "sync.csv"))
	require.NoError(t, err)
	assert.Equal(t, sync, async)
	assert.True(t, strings.HasPrefix(string(sync), "TransactionID,"), "a CSV with its header")
	assert.Contains(t, out.String(), "rows (synchronous)")

	cfg.user, cfg.sync, cfg.out = "bob", false, filepath.Join(dir, "bob.csv")
	err = run(ctx, cfg, &out, &bar)
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
	assert.Equal(t, "PermissionDenied: bob may not export transactions: no rule of demo-policy.txt allows bob to export transactions [EXPORT_DENIED]", describe(err))
	assert.NoFileExists(t, cfg.out)
	cfg.user, cfg.start = "ada", "2025-13-01"
	err = run(ctx, cfg, &out, &bar)
	assert.Equal(t, `InvalidArgument: start_date: "2025-13-01" is not a date of the form YYYY-MM-DD [field start_date: "2025-13-01" is not a date of the form YYYY-MM-DD]`, describe(err))
}

func mustDial(t *testing.T, addr string) *grpc.ClientConn {
	cc, err := grpcx.Dial(addr, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}
