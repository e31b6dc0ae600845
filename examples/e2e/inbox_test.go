package e2e_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/audit"
	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/testdb"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
)

// TestAuditInbox: audit keeping its trail in a database deduplicates
// through the inbox: a message published twice with one ID (as an outbox
// relay that crashed after publishing does) is recorded once, and so is
// one that arrives again after audit restarted, which an in-memory set of
// IDs would record twice. On SQLite and PostgreSQL.
func TestAuditInbox(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			e := newEnv(t, "mem://e2e-"+pubsub.NewID()[:12])
			var acked atomic.Int32 // audit's deliveries acknowledged
			e.opts = []pubsub.BrokerOption{pubsub.WithObserver(pubsub.Observer{OnSettle: func(_ context.Context, st pubsub.Settlement) {
				if st.Outcome == pubsub.OutcomeAcked {
					acked.Add(1)
				}
			}})}
			sqlDB, err := txstore.OpenDB(db.url(t))
			require.NoError(t, err)
			t.Cleanup(func() { _ = sqlDB.Close() })
			b := e.broker(t)
			topic := e.ns.UserActivity()
			require.NoError(t, b.(pubsub.GroupCreator).CreateGroup(context.Background(), topic.Name(), events.GroupAudit))
			publish := func(id, user string) {
				t.Helper()
				require.NoError(t, topic.Publish(context.Background(), b, events.UserActivity{UserID: user, Type: events.LoggedIn, At: time.Now()}, pubsub.WithID(id)))
			}
			count := func(api, user string, want int) {
				t.Helper()
				waitFor(t, 10*time.Second, fmt.Sprintf("%d records of %s", want, user), func() error {
					var r struct{ Count int }
					if err := getJSON(api+"/api/audit?user_id="+user, &r); err != nil {
						return err
					}
					if r.Count != want {
						return fmt.Errorf("%d records", r.Count)
					}
					return nil
				})
			}
			run := func(name string) (string, func()) {
				ctx, cancel := context.WithCancel(context.Background())
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				done := make(chan error, 1)
				go func() {
					done <- audit.Run(ctx, audit.Deps{Subscriber: e.broker(t), Namespace: e.ns, DB: sqlDB, Listener: ln, Logger: e.log})
				}()
				api := "http://" + ln.Addr().String()
				waitFor(t, 10*time.Second, name+" ready", func() error { return healthy(api) })
				return api, func() { cancel(); require.NoError(t, <-done) }
			}
			api, stop := run("audit")
			publish("m-1", "ada")
			publish("m-1", "ada") // the same message again
			publish("m-2", "ada")
			count(api, "ada", 2)
			stop()

			waitFor(t, 5*time.Second, "3 deliveries acknowledged", func() error {
				if n := acked.Load(); n != 3 {
					return fmt.Errorf("%d acknowledged", n)
				}
				return nil
			})

			api, stop = run("audit, restarted")
			defer stop()
			publish("m-1", "ada") // once more, after the restart
			publish("m-3", "bob")
			waitFor(t, 10*time.Second, "2 more deliveries acknowledged", func() error {
				if n := acked.Load(); n != 5 {
					return fmt.Errorf("%d acknowledged", n)
				}
				return nil
			})
			count(api, "bob", 1)
			count(api, "ada", 2)
			var inbox int
			require.NoError(t, sqlDB.QueryRow(`SELECT COUNT(*) FROM switchyard_inbox WHERE grp = 'audit'`).Scan(&inbox))
			assert.Equal(t, 3, inbox, "the inbox holds m-1, m-2, m-3")
		})
	}
}

var databases = []struct {
	name string
	url  func(testing.TB) string
}{{"sqlite", testdb.SQLite}, {"postgres", testdb.Postgres}}

// healthy reports whether base answers /healthz with 200.
func healthy(base string) error {
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz %s", resp.Status)
	}
	return nil
}
