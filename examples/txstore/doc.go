// Package txstore is the database of the transaction-export example, shared
// by the transactions service and the exporter workers: the transactions
// themselves (seeded with sample data) and the export requests, whose rows
// are also the outbox of export.requested events.
//
// Open takes a DATABASE_URL: a postgres:// or postgresql:// URL uses
// PostgreSQL (through pgx's database/sql driver); anything else is an
// embedded SQLite database file (pure Go, modernc.org/sqlite):
//
//	sqlite:///ABSOLUTE/PATH.db, sqlite:RELATIVE.db, file:PATH.db, PATH.db
//
// Times are stored in UTC to the microsecond: TIMESTAMPTZ on PostgreSQL,
// fixed-width RFC 3339 text on SQLite, whose text order is time order for
// years 0001 to 9999, the range of dates accepted (MinDate, MaxDate).
// Ranges are half-open in Go ([from, to)) and compared in SQL with
// inclusive bounds inside that range, so that the range ending on
// 9999-12-31 works on SQLite too.
package txstore
