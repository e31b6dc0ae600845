package testlog_test

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/switchyard-go/switchyard/internal/testlog"
)

// A logger used by several goroutines writes to a Buffer; the test reads
// the captured lines afterwards (or while they are written).
func ExampleBuffer() {
	var logs testlog.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // stable output for the example
			}
			return a
		},
	}))
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { logger.Info("reconnected", "attempt", i) })
	}
	wg.Wait()
	fmt.Println(strings.Count(logs.String(), "msg=reconnected"))
	// Output:
	// 3
}
