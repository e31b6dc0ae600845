package txstore

import (
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dialect is what differs between the databases.
type dialect struct {
	name string
	// timeType is the column type of timestamps.
	timeType string
	// placeholders rewrites "?" placeholders for the driver.
	placeholders func(q string) string
	// time turns a time into a query argument.
	time func(t time.Time) any
}

// sqliteTime is the layout of timestamps on SQLite: fixed width, so that
// comparing the text compares the times.
const sqliteTime = "2006-01-02T15:04:05.000000Z"

var (
	sqlite = dialect{
		name:         "sqlite",
		timeType:     "TEXT",
		placeholders: func(q string) string { return q },
		time:         func(t time.Time) any { return t.UTC().Format(sqliteTime) },
	}
	postgres = dialect{
		name:         "postgres",
		timeType:     "TIMESTAMPTZ",
		placeholders: dollarPlaceholders,
		time:         func(t time.Time) any { return t.UTC() },
	}
)

// q returns query with the dialect's placeholders and time type
// ("TIMESTAMP" in query text stands for it).
func (d dialect) q(query string) string {
	return d.placeholders(strings.ReplaceAll(query, "TIMESTAMP", d.timeType))
}

func dollarPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// timeScanner scans a timestamp column of either dialect; NULL leaves the
// zero time.
type timeScanner struct{ t *time.Time }

func (s timeScanner) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.t = time.Time{}
	case time.Time:
		*s.t = v.UTC()
	case string:
		return s.parse(v)
	case []byte:
		return s.parse(string(v))
	default:
		return fmt.Errorf("txstore: cannot scan %T into a time", src)
	}
	return nil
}

func (s timeScanner) parse(v string) error {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("txstore: bad timestamp %q: %w", v, err)
	}
	*s.t = t.UTC()
	return nil
}

// nullTime is a time argument that is NULL when zero.
func (d dialect) nullTime(t time.Time) any {
	if t.IsZero() {
		return driver.Value(nil)
	}
	return d.time(t)
}
