package driver_test

import (
	"fmt"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// A transport's ReplayDeadLetters sends each matching dead letter back to
// its group as Revive makes it: the dead-letter metadata removed and
// Attempt 1. An empty IDSet matches every ID ("replay all").
func ExampleRevive() {
	dl := &driver.Message{ID: "m-1", Key: "k", Payload: []byte("p"), Metadata: map[string]string{
		"app":                           "v",
		driver.MetadataDeadLetterReason: "card declined",
		driver.MetadataGroup:            "billing",
		driver.MetadataAttempts:         "5",
	}}
	for _, ids := range []driver.IDSet{driver.NewIDSet([]string{"m-2"}), driver.NewIDSet(nil)} {
		if !ids.Match(dl.ID) {
			fmt.Println("skipped", dl.ID)
			continue
		}
		m := driver.Revive(dl)
		fmt.Println("replayed", m.ID, m.Key, m.Attempt, m.Metadata)
	}
	// Output:
	// skipped m-1
	// replayed m-1 k 1 map[app:v]
}
