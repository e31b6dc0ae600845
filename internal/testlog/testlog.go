// Package testlog holds what tests need to capture logs: a Buffer that a
// logger, a child process or several goroutines may write to while the test
// reads what was written so far.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer guarded by a mutex, for capturing the output of
// a logger (slog.NewTextHandler(&buf, nil)) or of a process (cmd.Stderr =
// &buf) in tests. Write and String are safe for concurrent use, so a test
// may read while goroutines still write. The zero value is an empty buffer
// ready to use; a Buffer must not be copied after first use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer; it never fails. It implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns a copy of everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
