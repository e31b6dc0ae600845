package auth_test

import (
	"fmt"
	"strings"

	"github.com/switchyard-go/switchyard/examples/auth"
)

// A policy allows what one of its rules matches, and says which.
func ExampleParsePolicy() {
	p, err := auth.ParsePolicy("policy.txt", strings.NewReader(`
# user  action  resource
ada     export  transactions
carol   *       *
`))
	if err != nil {
		panic(err)
	}
	for _, user := range []string{"ada", "bob", "carol"} {
		ok, reason := p.Decide(user, "export", "transactions")
		fmt.Println(ok, reason)
	}
	// Output:
	// true policy.txt:3 allows ada export transactions
	// false no rule of policy.txt allows bob to export transactions
	// true policy.txt:4 allows carol * *
}
