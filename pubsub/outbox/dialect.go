package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Dialect is the SQL dialect of the database: Postgres or SQLite. The zero
// Dialect means "detect it from the database/sql driver" (see Config.Dialect).
type Dialect struct{ impl dialect }

// The dialects.
var (
	// Postgres is PostgreSQL (10 or later) through any database/sql driver;
	// it is tested with pgx's stdlib driver (github.com/jackc/pgx/v5/stdlib).
	// Relays claim rows with SELECT ... FOR UPDATE SKIP LOCKED in a
	// transaction held while they publish; writers serialize per ordering
	// key with transaction-scoped advisory locks.
	Postgres = Dialect{postgres{}}
	// SQLite is SQLite (3.35 or later, for RETURNING) through any
	// database/sql driver; it is tested with modernc.org/sqlite. Relays
	// claim rows with a lease written in a short transaction and never hold
	// a write transaction while they publish. Open the database in WAL mode
	// with a busy timeout (for modernc.org/sqlite:
	// "file:PATH?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"),
	// so that relays and writers wait for each other instead of failing.
	SQLite = Dialect{sqlite{}}
)

// String returns "postgres", "sqlite", or "" for the zero Dialect.
func (d Dialect) String() string {
	if d.impl == nil {
		return ""
	}
	return d.impl.name()
}

// dialect is what differs between the databases: the schema, and each
// statement the outbox, the relays and the inbox run.
type dialect interface {
	name() string
	schema(t tables) []string
	// insert stores msgs (validated, with IDs set) in tx, in order, taking
	// the per-key locks first where the database needs them.
	insert(ctx context.Context, tx *sql.Tx, t tables, topic string, rows []encoded) error
	// anyClaimable reports cheaply whether a claim may find rows.
	anyClaimable(ctx context.Context, db *sql.DB, t tables) (bool, error)
	// claim takes up to limit pending rows for this relay, oldest first,
	// leaving out rows that must wait for an earlier row of their key held
	// by another relay. The batch must be finished or abandoned.
	claim(ctx context.Context, db *sql.DB, t tables, limit int, lease time.Duration) (batch, error)
	// pending counts the pending rows and the age of the oldest.
	pending(ctx context.Context, db *sql.DB, t tables) (Pending, error)
	// cleanup deletes up to limit rows published before cutoff.
	cleanup(ctx context.Context, db *sql.DB, t tables, cutoff time.Time, limit int) (int64, error)
	// record inserts (group, id) into the inbox table in tx, reporting
	// false when it was there already.
	record(ctx context.Context, tx *sql.Tx, t tables, group, id string) (bool, error)
	// purgeInbox deletes up to limit inbox records of group received
	// before cutoff.
	purgeInbox(ctx context.Context, db *sql.DB, t tables, group string, cutoff time.Time, limit int) (int64, error)
}

// batch is a claim: rows to publish, in id order, and how to settle them.
type batch interface {
	rows() []row
	// claimed is how many rows the claim took, those left out because an
	// earlier row of their key is held elsewhere included.
	claimed() int
	// undecodable are the claimed rows whose metadata does not decode
	// (written by hand, say): they are to be rejected.
	undecodable() []rejection
	// finish records, in one transaction, which rows were published and
	// which were rejected for good, and lets the others go.
	finish(ctx context.Context, sent []int64, rejected []rejection, deleteSent bool) error
	// abandon lets every row go without recording anything (a relay that
	// stops); it does no I/O that can block long.
	abandon()
}

// row is a claimed outbox row.
type row struct {
	id      int64
	topic   string
	msg     *pubsub.Message
	age     time.Duration // how long ago it was stored, at claim time
	claimed time.Time
}

type rejection struct {
	id  int64
	err string
}

// tables are the (validated) names of the outbox and inbox tables.
type tables struct {
	outbox, inbox string
	// lockClass is the first key of the PostgreSQL advisory locks of the
	// outbox table: a hash of its name.
	lockClass int32
}

// identifier is a table name: an SQL identifier, optionally qualified by a
// schema (PostgreSQL).
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,50}(\.[A-Za-z_][A-Za-z0-9_]{0,50})?$`)

func newTables(outbox, inbox string) (tables, error) {
	for _, n := range []string{outbox, inbox} {
		if !identifier.MatchString(n) {
			return tables{}, fmt.Errorf("%w: table name %q: want an SQL identifier, optionally schema-qualified (schema.table)", pubsub.ErrInvalidOption, n)
		}
	}
	return tables{outbox: outbox, inbox: inbox, lockClass: int32(hash64("switchyard.outbox:" + outbox))}, nil
}

// index returns the name of an index of table: its unqualified name with a
// suffix (PostgreSQL creates an index in its table's schema).
func index(table, suffix string) string {
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		table = table[i+1:]
	}
	return table + "_" + suffix
}

// detect returns the dialect of db's driver.
func detect(db *sql.DB) (Dialect, error) {
	t := reflect.TypeOf(db.Driver())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch pkg := t.PkgPath(); {
	case strings.HasPrefix(pkg, "github.com/jackc/pgx/") && strings.HasSuffix(pkg, "/stdlib"), pkg == "github.com/lib/pq":
		return Postgres, nil
	case pkg == "modernc.org/sqlite", pkg == "github.com/mattn/go-sqlite3":
		return SQLite, nil
	default:
		return Dialect{}, fmt.Errorf("%w: cannot tell the SQL dialect of driver %s.%s; set Config.Dialect (or WithInboxDialect)", pubsub.ErrInvalidOption, pkg, t.Name())
	}
}

// hash64 is FNV-1a.
func hash64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// keyLock returns the second key of the advisory lock of an ordering key.
func keyLock(topic, key string) int32 {
	h := hash64(topic + "\x00" + key)
	return int32(h ^ h>>32)
}
