package testlog

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestBufferConcurrent writes from many goroutines while reading; under
// -race it shows that Write and String are safe together, and no write is
// lost.
func TestBufferConcurrent(t *testing.T) {
	var b Buffer
	const writers, lines = 8, 100
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range lines {
				_, _ = b.Write([]byte("line\n"))
			}
		})
	}
	wg.Go(func() {
		for range lines {
			_ = b.String()
		}
	})
	wg.Wait()
	assert.Equal(t, writers*lines, strings.Count(b.String(), "line\n"))
}
