package txstore

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"
)

// CSVHeader is the first row of every export.
var CSVHeader = []string{"TransactionID", "AccountID", "OccurredAt", "Amount", "Currency", "Description"}

// CSVRecord returns t as a CSV row matching CSVHeader.
func CSVRecord(t *Transaction) []string {
	return []string{
		strconv.FormatInt(t.ID, 10),
		t.AccountID,
		t.OccurredAt.UTC().Format(time.RFC3339),
		t.Amount(),
		t.Currency,
		t.Description,
	}
}

// WriteCSV writes the header row and then the transactions with from <=
// OccurredAt < to to w, as RFC 4180 CSV (encoding/csv), streaming them from
// the database; it returns the number of transaction rows written. When
// progress is not nil it is called with the count after every `every` rows
// (and its error stops the export). Nothing is held in memory beyond
// encoding/csv's buffer.
func (s *Store) WriteCSV(ctx context.Context, w io.Writer, from, to time.Time, every int64, progress func(rows int64) error) (int64, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return 0, fmt.Errorf("txstore: write CSV: %w", err)
	}
	var n int64
	err := s.EachTransaction(ctx, from, to, func(t *Transaction) error {
		if err := cw.Write(CSVRecord(t)); err != nil {
			return fmt.Errorf("txstore: write CSV: %w", err)
		}
		n++
		if progress != nil && every > 0 && n%every == 0 {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return fmt.Errorf("txstore: write CSV: %w", err)
			}
			return progress(n)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return n, fmt.Errorf("txstore: write CSV: %w", err)
	}
	return n, nil
}
