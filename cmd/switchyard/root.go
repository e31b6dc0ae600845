package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-go/switchyard/internal/redact"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1   // a runtime error: the broker, the topic, the data
	exitUsage       = 2   // a usage error: unknown command, bad flag, missing arguments
	exitInterrupted = 130 // Ctrl-C stopped a command other than tail (128 + SIGINT)
)

// defaultURL is the broker URL when neither --url nor $PUBSUB_URL is given.
const defaultURL = "mem://"

// app is one invocation of the command line: its I/O, its global flags and
// what the commands share.
type app struct {
	ctx    context.Context // cancelled by Ctrl-C (SIGINT) or SIGTERM
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// terminal reports whether f (one of stdin, stdout, stderr) is a
	// terminal; tests replace it.
	terminal func(f any) bool
	// args is the command line, for the record a matrix run keeps.
	args []string

	url      string
	timeout  time.Duration
	verbose  bool
	progress string // auto, always, never

	ran bool // a command's RunE started: errors from here on are not usage errors
}

// usageError is an error in how the command line was written; it exits 2
// with the command's usage.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// usagef returns a usageError.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// run executes the command line args and returns the process's exit code.
// It is main without the process: tests call it with their own I/O.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, terminal: terminalCheck, args: args}
	return a.execute(args)
}

// execute runs the root command and maps its outcome to an exit code,
// printing errors as one line (and the usage for usage errors).
func (a *app) execute(args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteContextC(a.ctx)
	if err == nil {
		return exitOK
	}
	var ue usageError
	if !a.ran || errors.As(err, &ue) {
		fmt.Fprintf(a.stderr, "switchyard: %s\n\n%s", a.oneLine(err), cmd.UsageString())
		return exitUsage
	}
	if a.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintln(a.stderr, "switchyard: interrupted")
		return exitInterrupted
	}
	fmt.Fprintf(a.stderr, "switchyard: %s\n", a.oneLine(err))
	return exitError
}

// oneLine returns err's text on one line, with the password of --url
// removed wherever it appears.
func (a *app) oneLine(err error) string {
	s := err.Error()
	if u, perr := url.Parse(a.url); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			s = strings.ReplaceAll(s, pw, "xxxxx")
			s = strings.ReplaceAll(s, url.QueryEscape(pw), "xxxxx")
		}
	}
	return strings.Join(strings.Fields(s), " ")
}

const rootLong = `switchyard looks inside a pub/sub system and measures it, the same way on
every broker Switchyard supports: publish messages, tail a topic, list, show,
replay and purge a group's dead letters, manage groups, run a portable
load benchmark, and soak a broker and the library for hours with members
coming and going.

Every command takes --url, the broker (default $PUBSUB_URL, else mem://):

  amqp://USER:PASS@HOST:5672/VHOST, amqps://...   RabbitMQ
  gcppubsub://PROJECT                             Google Cloud Pub/Sub (honours PUBSUB_EMULATOR_HOST)
  nats://HOST:4222                                NATS JetStream
  mem://[NAME]                                    the in-process broker

Schemes this build knows: %s.

mem:// lives inside one switchyard process and dies with it: a command on
mem:// sees only what that same command did. It is useful for bench and for
trying the commands out, not for looking at another process's messages;
use a networked broker for that.

Exit codes: 0 success; 1 a runtime error (unreachable broker, bad URL,
unknown topic or group), printed as one line without passwords; 2 a usage
error, printed with the usage; 130 interrupted by Ctrl-C (tail ends normally
with 0, and deletes its throw-away group).`

// rootCmd builds the command tree.
func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "switchyard",
		Short:         "Look inside a pub/sub system and measure it, on any broker",
		Long:          fmt.Sprintf(rootLong, strings.Join(transport.Schemes(), ", ")),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return usagef("missing command")
		},
	}
	def := a.getenv("PUBSUB_URL")
	if def == "" {
		def = defaultURL
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.url, "url", def, "broker URL; the default is $PUBSUB_URL, else mem://")
	pf.DurationVar(&a.timeout, "timeout", 30*time.Second, "bound on connecting and on each broker call")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "log the broker's and the delivery loop's events at debug level")
	pf.StringVar(&a.progress, "progress", "auto", "progress bars: auto (when stderr is a terminal), always or never")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	// The help of the flag shows the effective default, which may come from
	// $PUBSUB_URL: show it without its password.
	pf.Lookup("url").DefValue = showURL(def)

	root.AddCommand(a.publishCmd(), a.tailCmd(), a.dlqCmd(), a.groupsCmd(), a.benchCmd(), a.soakCmd())
	return root
}

// runE wraps a command's work so that errors it returns are runtime errors
// (exit 1) unless they are usageErrors; global flags are checked first.
func (a *app) runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		switch a.progress {
		case "auto", "always", "never":
		default:
			return usagef("--progress %q: want auto, always or never", a.progress)
		}
		if a.timeout <= 0 {
			return usagef("--timeout %v: want a positive duration", a.timeout)
		}
		a.ran = true
		return fn(cmd, args)
	}
}

// groupCmd returns a command that only holds subcommands: given no
// subcommand, or an unknown one, it is a usage error.
func groupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return usagef("missing subcommand for %q", cmd.CommandPath())
		},
	}
	c.AddCommand(subs...)
	return c
}

// exactArgs is cobra.ExactArgs with usage errors naming the arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usagef("missing %s", strings.Join(names[len(args):], " and "))
		}
		if len(args) > len(names) {
			return usagef("unexpected argument %q", args[len(names)])
		}
		return nil
	}
}

// minArgs requires the named arguments and allows more.
func minArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usagef("missing %s", strings.Join(names[len(args):], " and "))
		}
		return nil
	}
}

// checkNames validates a topic and, when not empty, a group before any I/O:
// a bad name is a usage error.
func checkNames(topic, group string) error {
	if err := pubsub.ValidateTopic(topic); err != nil {
		return usageError{fmt.Errorf("topic: %w", err)}
	}
	if group == "" {
		return nil
	}
	if err := pubsub.ValidateGroup(group); err != nil {
		return usageError{fmt.Errorf("group: %w", err)}
	}
	return nil
}

// broker is what the commands need of a broker: every broker transport.Open
// returns is a *pubsub.Client, which has all of it.
type broker interface {
	pubsub.Broker
	pubsub.GroupCreator
	pubsub.GroupDeleter
	pubsub.DeadLetterAdmin
	pubsub.GroupLister
	pubsub.Pinger
}

// open connects to the broker --url names, bounded by --timeout. The caller
// closes it.
func (a *app) open() (broker, error) {
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	defer cancel()
	b, err := transport.Open(ctx, a.url, pubsub.WithLogger(a.logger()), pubsub.WithDrainTimeout(a.timeout))
	if err != nil {
		if a.ctx.Err() != nil {
			return nil, a.ctx.Err()
		}
		return nil, fmt.Errorf("cannot open the broker: %w", err) // transport errors name the URL or host, without password
	}
	bb, ok := b.(broker)
	if !ok {
		_ = b.Close()
		return nil, fmt.Errorf("the broker of %s lacks the admin API (%T)", showURL(a.url), b)
	}
	return bb, nil
}

// logger is the broker's logger: warnings and errors to stderr, everything
// with --verbose.
func (a *app) logger() *slog.Logger {
	level := slog.LevelWarn
	if a.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
}

// call returns a context for one broker call, bounded by --timeout.
func (a *app) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.ctx, a.timeout)
}

// closeBroker closes b, bounded by --timeout, even after Ctrl-C.
func (a *app) closeBroker(b broker) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), a.timeout)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		fmt.Fprintf(a.stderr, "switchyard: closing the broker: %s\n", a.oneLine(err))
	}
}

// notFound turns the broker's ErrNotFound for a group into a clear error.
func notFound(err error, topic, group string) error {
	if !errors.Is(err, pubsub.ErrNotFound) {
		return err
	}
	if group == "" {
		return fmt.Errorf("topic %s does not exist", topic)
	}
	return fmt.Errorf("group %s of topic %s does not exist (switchyard groups list %s shows the groups)", group, topic, topic)
}

// terminalCheck is how run detects terminals; tests replace it.
var terminalCheck = isTerminal

// isTerminal reports whether f is an *os.File on a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && termIsTerminal(int(file.Fd()))
}

// showURL returns rawURL for display: as given when it has no password,
// else with the password replaced (internal/redact).
func showURL(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.User == nil && !strings.Contains(rawURL, "@") {
		return rawURL
	}
	return redact.URL(rawURL)
}
