package pubsub

import (
	"unsafe"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// driverMessages returns msgs as driver messages, sharing the slice: the
// two pointer types have the same layout (message.go checks at compile time
// that the structs convert), and a Publish must not allocate a second slice.
func driverMessages(msgs []*Message) []*driver.Message {
	if len(msgs) == 0 {
		return nil
	}
	return unsafe.Slice((**driver.Message)(unsafe.Pointer(&msgs[0])), len(msgs))
}
