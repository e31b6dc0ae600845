package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExitCodes runs the binary: usage errors exit 2 with the message and
// the usage; runtime errors exit 1 with one line and no password.
func TestExitCodes(t *testing.T) {
	tg := memProcess()
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string // the first line of stderr
	}{
		{"no command", nil, 2, `switchyard: missing command`},
		{"unknown command", []string{"bogus"}, 2, `switchyard: unknown command "bogus" for "switchyard"`},
		{"unknown subcommand", []string{"dlq", "bogus"}, 2, `switchyard: unknown command "bogus" for "switchyard dlq"`},
		{"missing subcommand", []string{"groups"}, 2, `switchyard: missing subcommand for "switchyard groups"`},
		{"missing args", []string{"dlq", "list", "t"}, 2, `switchyard: missing GROUP`},
		{"missing topic", []string{"publish"}, 2, `switchyard: missing TOPIC`},
		{"extra arg", []string{"tail", "a", "b"}, 2, `switchyard: unexpected argument "b"`},
		{"unknown flag", []string{"tail", "--bogus", "t"}, 2, `switchyard: unknown flag: --bogus`},
		{"bad flag value", []string{"tail", "t", "-n", "many"}, 2, `switchyard: invalid argument "many" for "-n, --number" flag: strconv.ParseInt: parsing "many": invalid syntax`},
		{"invalid topic", []string{"publish", "bad topic", "x"}, 2, `switchyard: topic: pubsub: invalid topic name: "bad topic" has ' ' at byte 3 (allowed: letters, digits, '.', '_', '-')`},
		{"replay without ids", []string{"dlq", "replay", "t", "g"}, 2, `switchyard: give the IDs of the dead letters to replay, or --all`},
		{"ids and --all", []string{"dlq", "purge", "t", "g", "id", "--all"}, 2, `switchyard: give IDs or --all, not both`},
		{"bench size", []string{"bench", "--size", "3"}, 2, `switchyard: --size 3: want at least 24`},
		{"bench args", []string{"bench", "mem://"}, 2, `switchyard: unexpected argument "mem://" (URLs as arguments go with --matrix; otherwise use --url)`},
		{"bad progress", []string{"--progress", "sometimes", "groups", "list", "t"}, 2, `switchyard: --progress "sometimes": want auto, always or never`},

		{"unknown scheme", []string{"--url", "nope://user:s3cret@host/", "groups", "list", "t"}, 1,
			`switchyard: cannot open the broker: transport: unknown URL scheme "nope" (want one of `},
		{"unparsable URL", []string{"--url", "::nope", "groups", "list", "t"}, 1, `switchyard: cannot open the broker: transport: invalid URL: [unparsable URL]`},
		{"unreachable broker", []string{"--url", "amqp://guest:s3cret@127.0.0.1:1/", "--timeout", "5s", "groups", "list", "t"}, 1, `switchyard: cannot open the broker: `},
		{"unknown topic", []string{"groups", "list", "t"}, 1, `switchyard: list groups: topic t does not exist`},
		{"unknown group", []string{"dlq", "list", "t", "g"}, 1, `switchyard: list dead letters: group g of topic t does not exist (switchyard groups list t shows the groups)`},
		{"publish unknown topic", []string{"publish", "t", "x"}, 1, `switchyard: topic t does not exist (create a group first: switchyard groups create t GROUP; or give --force)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tg.run(t, "", tc.args...)
			assert.Equal(t, tc.code, r.code, "stderr %q", r.stderr)
			assert.Empty(t, r.stdout)
			errLines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			assert.True(t, strings.HasPrefix(errLines[0], tc.msg), "stderr begins %q, want %q", errLines[0], tc.msg)
			assert.NotContains(t, r.stderr, "s3cret")
			if tc.code == 2 {
				assert.Contains(t, r.stderr, "\nUsage:\n", "a usage error prints the usage")
			} else {
				assert.Len(t, errLines, 1, "a runtime error is one line: %q", r.stderr)
			}
		})
	}
}

// TestHelp: --help and help exit 0 and document the URL and mem://.
func TestHelp(t *testing.T) {
	tg := memProcess()
	r := tg.run(t, "", "--help")
	requireOK(t, r)
	assert.Contains(t, r.stdout, "$PUBSUB_URL")
	assert.Contains(t, r.stdout, "mem:// lives inside one switchyard process")
	r = tg.run(t, "", "help", "groups", "list")
	requireOK(t, r)
	assert.Contains(t, r.stdout, "What each broker can tell")
}

// TestURLFromEnvironment: without --url, $PUBSUB_URL names the broker.
func TestURLFromEnvironment(t *testing.T) {
	cmd := exec.Command(switchyardBinary(t), "groups", "list", "t")
	cmd.Env = append(os.Environ(), "PUBSUB_URL=nope://user:s3cret@h/")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Equal(t, "switchyard: cannot open the broker: transport: unknown URL scheme \"nope\"", strings.SplitN(string(out), " (want", 2)[0])
}
