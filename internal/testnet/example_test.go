package testnet_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/switchyard-go/switchyard/internal/testnet"
)

// A client whose handshake meets silence gives up at its deadline.
func ExampleSilent() {
	s, err := testnet.NewSilent()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	c, err := net.Dial("tcp", s.Addr()) // the connection is accepted...
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = c.Read(make([]byte, 8)) // ...but no greeting ever comes
	fmt.Println("timed out:", errors.Is(err, os.ErrDeadlineExceeded))
	// Output:
	// timed out: true
}
