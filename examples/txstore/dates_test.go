package txstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/txstore"
)

func TestParseDateRange(t *testing.T) {
	from, to, err := txstore.ParseDateRange("2025-02-01", "2025-02-28")
	require.NoError(t, err)
	assert.Equal(t, time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), from)
	assert.Equal(t, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), to, "EndDate is inclusive")

	from, to, err = txstore.ParseDateRange("0001-01-01", "9999-12-31")
	require.NoError(t, err, "the whole accepted range")
	assert.Equal(t, txstore.MinDate, from)
	assert.Equal(t, 10000, to.Year())

	for _, tc := range []struct{ start, end, want string }{
		{"", "2025-01-01", "StartDate is required"},
		{"2025-01-01", "", "EndDate is required"},
		{"2025-13-01", "2025-12-01", `StartDate "2025-13-01" is not a date`},
		{"2025-01-01", "01/02/2025", `EndDate "01/02/2025" is not a date`},
		{"2025-02-01", "2025-01-31", "StartDate 2025-02-01 is after EndDate 2025-01-31"},
		{"0000-01-01", "2025-01-31", "StartDate 0000-01-01 is before 0001-01-01, the first date accepted"},
		{"2025-01-01", "10000-01-01", `EndDate "10000-01-01" is not a date`},
	} {
		_, _, err := txstore.ParseDateRange(tc.start, tc.end)
		require.Error(t, err, "%s..%s", tc.start, tc.end)
		assert.Contains(t, err.Error(), tc.want)
	}
}
