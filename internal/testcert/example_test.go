package testcert_test

import (
	"crypto/tls"
	"fmt"
	"log"
	"os"

	"github.com/switchyard-go/switchyard/internal/testcert"
)

// A test makes a CA and a server certificate signed by it: the server (a
// broker started by the test, or a listener in the test) uses the
// certificate, and clients trust the CA's PEM file or pool.
func ExampleCA_IssueServer() {
	dir, err := os.MkdirTemp("", "testcert")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ca, err := testcert.NewCA(dir, "example-ca")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := ca.IssueServer(dir)
	if err != nil {
		log.Fatal(err)
	}
	// A server in the test process: srv.Certificate. A broker's config
	// file: srv.CertFile and srv.KeyFile. A client URL: ca.File.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srv.Certificate}, MinVersion: tls.VersionTLS12})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("verified:", c.ConnectionState().PeerCertificates[0].Subject.CommonName)
	// Output:
	// verified: 127.0.0.1
}
