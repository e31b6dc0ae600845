package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
	"github.com/switchyard-go/switchyard/transport/memory"
)

type OrderPlaced struct {
	ID    string
	Total int
}

// openExampleDB opens a SQLite database in a temporary directory, which
// cleanup removes.
func openExampleDB() (db *sql.DB, cleanup func()) {
	dir, err := os.MkdirTemp("", "outbox-example")
	if err != nil {
		log.Fatal(err)
	}
	db, err = sql.Open("sqlite", "file:"+filepath.Join(dir, "shop.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		log.Fatal(err)
	}
	return db, func() { _ = db.Close(); _ = os.RemoveAll(dir) }
}

// An order and its event are written in one transaction; the relay
// publishes the event after commit.
func Example() {
	ctx := context.Background()
	db, cleanup := openExampleDB()
	defer cleanup()
	broker, err := memory.New(memory.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	if err := outbox.Migrate(ctx, db, outbox.Config{}); err != nil {
		log.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE orders (id TEXT PRIMARY KEY, total INTEGER)`); err != nil {
		log.Fatal(err)
	}
	ob, err := outbox.New(db, outbox.Config{Publisher: broker})
	if err != nil {
		log.Fatal(err)
	}
	relay, stop := context.WithCancel(ctx)
	defer stop()
	go ob.Run(relay) //nolint:errcheck // returns nil when stopped

	placed := pubsub.NewTopic[OrderPlaced]("orders.placed")
	done := make(chan struct{})
	_, err = placed.Subscribe(ctx, broker, "billing", func(_ context.Context, o OrderPlaced, _ *pubsub.Message) error {
		fmt.Println("order placed:", o.ID, o.Total)
		close(done)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders (id, total) VALUES (?, ?)`, "o-1", 1999); err != nil {
		log.Fatal(err)
	}
	if err := placed.Publish(ctx, ob.Tx(tx), OrderPlaced{ID: "o-1", Total: 1999}, pubsub.WithKey("o-1")); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
	<-done
	// Output: order placed: o-1 1999
}

// A handler wrapped by Idempotent has its effects once per message ID,
// however often the message is delivered.
func ExampleIdempotent() {
	ctx := context.Background()
	db, cleanup := openExampleDB()
	defer cleanup()
	if err := outbox.Migrate(ctx, db, outbox.Config{}); err != nil {
		log.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE invoices (order_id TEXT NOT NULL)`); err != nil {
		log.Fatal(err)
	}
	duplicates := 0
	h := outbox.Idempotent(db, "billing", func(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO invoices (order_id) VALUES (?)`, m.Key)
		return err
	}, outbox.WithInboxObserver(outbox.Observer{OnDuplicate: func(context.Context, string, *pubsub.Message) { duplicates++ }}))

	m := &pubsub.Message{ID: "m-1", Key: "o-1", Attempt: 1}
	for range 3 { // delivered three times
		if err := h(ctx, m); err != nil {
			log.Fatal(err)
		}
	}
	var invoices int
	if err := db.QueryRow(`SELECT count(*) FROM invoices`).Scan(&invoices); err != nil {
		log.Fatal(err)
	}
	fmt.Println("invoices:", invoices, "duplicates:", duplicates)
	// Output: invoices: 1 duplicates: 2
}
