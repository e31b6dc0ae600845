package txstore

import (
	"errors"
	"fmt"
	"time"
)

// DateLayout is the layout of StartDate and EndDate: YYYY-MM-DD.
const DateLayout = "2006-01-02"

// The accepted range of dates: years 0001 to 9999 (four digits; the
// Gregorian calendar has no year 0000). Every time in it is stored and
// compared in an order-preserving form on both databases.
var (
	MinDate = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxDate = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// ParseDateRange parses an inclusive range of dates (YYYY-MM-DD, UTC,
// from MinDate to MaxDate) and returns it as the half-open time range
// [from, to): to is the midnight after end. Its error names every problem,
// in words fit for an API client.
func ParseDateRange(start, end string) (from, to time.Time, err error) {
	var errs []error
	parse := func(name, v string) time.Time {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required (YYYY-MM-DD)", name))
			return time.Time{}
		}
		t, err := time.Parse(DateLayout, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %.40q is not a date of the form YYYY-MM-DD", name, v))
			return time.Time{}
		}
		if t.Before(MinDate) {
			errs = append(errs, fmt.Errorf("%s %s is before %s, the first date accepted", name, v, MinDate.Format(DateLayout)))
		}
		return t
	}
	from = parse("StartDate", start)
	last := parse("EndDate", end)
	if len(errs) == 0 && from.After(last) {
		errs = append(errs, fmt.Errorf("StartDate %s is after EndDate %s", start, end))
	}
	if err := errors.Join(errs...); err != nil {
		return time.Time{}, time.Time{}, err
	}
	return from, last.AddDate(0, 0, 1), nil
}
