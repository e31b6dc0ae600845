package faultproxy_test

import (
	"fmt"
	"time"

	"github.com/switchyard-go/switchyard/internal/faultproxy"
)

// A test points its client at the proxy, then injects faults: an outage
// (cut and refuse), a slow link, a narrow one, and back to normal.
func Example() {
	p, rawURL, err := faultproxy.ForURL("amqp://guest:guest@127.0.0.1:5672/", "5672")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	_ = rawURL // open the client on rawURL

	p.SetDown(true) // refuse new connections...
	p.Cut()         // ...and close the open ones: an outage
	p.SetDown(false)
	p.SetLatency(200 * time.Millisecond) // each way
	p.SetBandwidth(64 << 10)             // bytes/s each way, per connection
	p.Reset()                            // no fault
	fmt.Println(p.Stats().Open)
	// Output: 0
}
