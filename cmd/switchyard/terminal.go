package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// termIsTerminal reports whether fd is a terminal.
func termIsTerminal(fd int) bool { return term.IsTerminal(fd) }

// confirm asks question on stderr and reads the answer from stdin when stdin
// is a terminal and --yes was not given; otherwise it returns true without
// asking. Only "y" or "yes" confirm.
func (a *app) confirm(yes bool, question string) (bool, error) {
	if yes || !a.terminal(a.stdin) {
		return true, nil
	}
	fmt.Fprintf(a.stderr, "%s [y/N] ", question)
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(a.stderr)
		return false, nil // end of input: not confirmed
	}
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes", nil
}

// screenRows is the height of the terminal on stdout or stderr, or 24.
func (a *app) screenRows() int {
	for _, f := range []any{a.stdout, a.stderr} {
		if file, ok := f.(*os.File); ok && a.terminal(f) {
			if _, h, err := term.GetSize(int(file.Fd())); err == nil && h > 0 {
				return h
			}
		}
	}
	return 24
}

// showProgress reports whether to draw a progress bar on stderr: always with
// --progress always, never with never, and with auto when stderr is a
// terminal and big (for counted work: more than a screenful) is true.
func (a *app) showProgress(big bool) bool {
	switch a.progress {
	case "always":
		return true
	case "never":
		return false
	}
	return big && a.terminal(a.stderr)
}

// newBar returns a progress bar of max steps on stderr, drawn at most ten
// times a second.
func (a *app) newBar(max int64, description string, opts ...progressbar.Option) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max, append([]progressbar.Option{
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(a.stderr) }),
	}, opts...)...)
}
