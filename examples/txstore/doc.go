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
// Times are stored in UTC: TIMESTAMPTZ on PostgreSQL, fixed-width RFC 3339
// text on SQLite (so that text order is time order).
package txstore
