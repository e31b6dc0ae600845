package transport_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/testlog"
	"github.com/switchyard-go/switchyard/internal/testnet"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// TestOpenNeverShowsPassword walks every way Open can fail for each scheme
// that takes credentials (parsing, query parameters, validation, refused
// and silent servers, TLS handshakes that never finish) with the password
// s3cr3t-PASS, plain and percent-encoded, and with NATS tokens: neither the
// error nor anything logged shows it. The TLS and authentication failures
// of a real server are in transport/nats (TestTLS) and transport/rabbitmq
// (TestAMQPS, TestOpenUnreachable).
func TestOpenNeverShowsPassword(t *testing.T) {
	const canary = "s3cr3t" // every password below contains it
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := ln.Addr().String()
	require.NoError(t, ln.Close())

	// A server that accepts and never answers: handshakes time out.
	silent, err := testnet.NewSilent()
	require.NoError(t, err)
	t.Cleanup(func() { _ = silent.Close() })
	quiet := silent.Addr()

	var urls []string
	for _, pw := range []string{"s3cr3t-PASS", "s3cr3t%2DPASS", "s3cr3t%40PASS"} {
		for _, scheme := range []string{"amqp", "amqps"} {
			base := scheme + "://guest:" + pw + "@"
			urls = append(urls,
				base+"host:5672/%zz",                                  // does not parse
				base+"host:5672/?prefetch=x&unknown=1",                // bad and unknown parameters
				base+"host:5672/?queue_type=bad&connect_timeout=-1s",  // invalid values
				base+"host:99999/",                                    // port out of range
				base+refused+"/",                                      // refused
				base+quiet+"/?connect_timeout=300ms",                  // silent: AMQP or TLS handshake times out
				scheme+":guest:"+pw+"@host",                           // opaque
				base+refused+"/?cacertfile=/nonexistent/ca.pem",       // unreadable CA file (amqps)
				base+refused+"/?auth_mechanism=bogus&heartbeat=bogus", // amqp091's own parameter errors
			)
		}
		for _, scheme := range []string{"nats", "tls"} {
			for _, userinfo := range []string{"alice:" + pw, pw} { // password, token
				base := scheme + "://" + userinfo + "@"
				urls = append(urls,
					base+"host:4222/%zz",
					base+"host:4222?replicas=x&unknown=1",
					base+"host:4222?namespace=bad-ns&ack_wait=1ms",
					base+"host:70000",
					base+"a,,b",
					base+"host:4222/path",
					base+refused+"?connect_timeout=2s",
					base+quiet+"?connect_timeout=300ms",
					base+refused+"?tls_ca=/nonexistent/ca.pem&connect_timeout=2s",
					base+refused+"?creds=/nonexistent/user.creds&connect_timeout=2s",
					scheme+":"+userinfo+"@host",
				)
			}
		}
		urls = append(urls,
			"gcppubsub://svc:"+pw+"@project", "gcppubsub:svc:"+pw+"@project", "gcppubsub://project/svc:"+pw+"@x",
			"mem://user:"+pw+"@name", "mem:user:"+pw+"@name",
			"kafka://user:"+pw+"@host", "user:"+pw+"@host", "://user:"+pw+"@host",
		)
	}
	for _, raw := range urls {
		t.Run(raw, func(t *testing.T) {
			var logs testlog.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			b, err := transport.Open(ctx, raw, pubsub.WithLogger(log))
			if b != nil {
				_ = b.Close()
			}
			require.Error(t, err)
			assert.Less(t, time.Since(start), 10*time.Second, "fails within the connect timeout")
			assert.NotContains(t, err.Error(), canary, "error")
			assert.NotContains(t, strings.ToLower(logs.String()), canary, "logs")
		})
	}
}
