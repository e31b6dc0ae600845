package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/switchyard-go/switchyard/examples/auth"
	"github.com/switchyard-go/switchyard/examples/exporter"
	"github.com/switchyard-go/switchyard/examples/internal/grpcx"
	"github.com/switchyard-go/switchyard/examples/internal/testdb"
	"github.com/switchyard-go/switchyard/examples/proto/authpb"
	"github.com/switchyard-go/switchyard/examples/proto/exportpb"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/transactions"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// forMemAndAMQP runs test on mem:// and on RabbitMQ, deleting afterwards
// what the test's namespace left on RabbitMQ.
func forMemAndAMQP(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("mem", func(t *testing.T) {
		test(t, newEnv(t, "mem://e2e-"+pubsub.NewID()[:12]))
	})
	t.Run("amqp", func(t *testing.T) {
		url := brokertest.AMQPURL(t)
		b, err := openBroker(context.Background(), url)
		if errors.Is(err, transport.ErrUnknownScheme) {
			t.Skipf("amqp:// is not wired into transport.Open yet: %v", err)
		}
		require.NoError(t, err)
		require.NoError(t, b.Close())
		e := newEnv(t, url)
		t.Cleanup(func() { cleanupTopology(t, e) }) // runs after the services stopped
		test(t, e)
	})
}

// grpcStack is the export example with its gRPC API and the auth service.
type grpcStack struct {
	exportStack
	grpcAddr string
	authAddr string
	client   exportpb.ExportServiceClient
	// stopAuth stops the auth service (idempotent).
	stopAuth func()
}

type grpcConfig struct {
	exporters int
	seed      int
	// authAddr, when set, is the auth service to use instead of starting
	// one (an address where nothing answers, say).
	authAddr    string
	authTimeout time.Duration
	// tp makes the gRPC spans (nil: the global TracerProvider).
	tp trace.TracerProvider
	// workerFiles wraps the exporters' storage.
	workerFiles func(storage.Storage) storage.Storage
}

// startAuth runs the auth service on a loopback listener until t ends and
// returns its address and a func that stops it.
func startAuth(t *testing.T, e *env, tp trace.TracerProvider) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- auth.Run(ctx, auth.Deps{Policy: auth.DemoPolicy(), Listener: ln, TracerProvider: tp, Logger: e.log})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("auth: Run returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("auth: Run did not return within 30s of cancel")
		}
	}
	t.Cleanup(stop)
	cc := dial(t, ln.Addr().String(), nil)
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	require.NoError(t, grpcx.WaitServing(wctx, cc, authpb.AuthService_ServiceDesc.ServiceName))
	return ln.Addr().String(), stop
}

// dial returns a client connection to addr, closed when t ends.
func dial(t *testing.T, addr string, tp trace.TracerProvider) *grpc.ClientConn {
	cc, err := grpcx.Dial(addr, tp)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// startGRPCStack runs auth, the transactions service with its gRPC API
// asking auth, the exporters and a notifier, as startExportStack does.
func startGRPCStack(t *testing.T, e *env, cfg grpcConfig, extra func(*transactions.Deps)) grpcStack {
	ctx := context.Background()
	store, err := txstore.Open(ctx, testdb.SQLite(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	if cfg.seed == 0 {
		cfg.seed = seedRows
	}
	_, err = store.Seed(ctx, cfg.seed, nil)
	require.NoError(t, err)
	files, err := storage.NewDir(t.TempDir())
	require.NoError(t, err)

	s := grpcStack{exportStack: exportStack{store: store, files: files}, stopAuth: func() {}}
	s.authAddr = cfg.authAddr
	if s.authAddr == "" {
		s.authAddr, s.stopAuth = startAuth(t, e, cfg.tp)
	}
	authClient := authpb.NewAuthServiceClient(dial(t, s.authAddr, cfg.tp))
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.grpcAddr = gln.Addr().String()
	deps := transactions.Deps{Store: store, Storage: files, Publisher: e.broker(t), Namespace: e.ns,
		SweepInterval: 100 * time.Millisecond, Logger: e.log,
		GRPCListener: gln, Auth: authClient, AuthTimeout: cfg.authTimeout, TracerProvider: cfg.tp}
	if extra != nil {
		extra(&deps)
	}
	s.api = start(t, "transactions", func(ctx context.Context, ln net.Listener) error {
		d := deps
		d.Listener = ln
		return transactions.Run(ctx, d)
	})
	var workerFiles storage.Storage = files
	if cfg.workerFiles != nil {
		workerFiles = cfg.workerFiles(files)
	}
	for i := range cfg.exporters {
		name := fmt.Sprintf("exporter-%d", i+1)
		s.workers = append(s.workers, name)
		start(t, name, func(ctx context.Context, ln net.Listener) error {
			return exporter.Run(ctx, exporter.Deps{Broker: e.broker(t), Store: store, Storage: workerFiles, Namespace: e.ns, Groups: []string{},
				Worker: name, Concurrency: 1, ProgressEvery: 100, SubscribeOptions: e.fast, Listener: ln, Logger: e.log})
		})
	}
	s.client = exportpb.NewExportServiceClient(dial(t, s.grpcAddr, nil))
	return s
}

// as returns ctx with user in the x-user metadata.
func as(ctx context.Context, user string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, transactions.UserMetadata, user)
}

// gate holds the exporters at the start of each export (Storage.Create)
// until open is called, so that a test can start watching an export before
// the exporter makes progress.
type gate struct {
	storage.Storage
	ch   chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) wrap(s storage.Storage) storage.Storage { g.Storage = s; return g }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func (g *gate) Create(ctx context.Context, key string) (io.WriteCloser, error) {
	select {
	case <-g.ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Storage.Create(ctx, key)
}
