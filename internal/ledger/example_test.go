package ledger_test

import (
	"fmt"
	"time"

	"github.com/switchyard-go/switchyard/internal/ledger"
)

func Example() {
	l := ledger.New()
	l.Confirmed("m-1", "m-2") // Publish returned nil for both
	l.Received("m-1")         // from the group's handler
	l.Received("m-2")
	l.Received("m-2") // redelivered
	fmt.Println(l.WaitAllReceived(time.Second))
	c := l.Counts()
	fmt.Println(c.Confirmed, len(c.Lost), c.Duplicates)
	// Output:
	// true
	// 2 0 1
}
