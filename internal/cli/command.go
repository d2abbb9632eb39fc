package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one duct subcommand. A fresh value serves each run: define
// binds its flags to its fields, run does the work.
type command interface {
	info() cmdInfo
	define(fs *flagSet, e *env)
	run(ctx context.Context, e *env, args []string) error
}

// cmdInfo is a command's help.
type cmdInfo struct {
	name     string
	group    string // heading in the overview
	summary  string // one line, no period
	usage    string // arguments after "duct NAME"
	help     string // paragraphs
	examples string // lines, "#" comments allowed
	// complete says what its positional arguments are, for shell
	// completion: "function", "file", or a space-separated word list.
	complete string
}

// commands returns a fresh value of every command, in overview order.
func commands() []command {
	return []command{
		&serverCmd{}, &devCmd{},
		&deployCmd{}, &invokeCmd{}, &invocationsCmd{}, &lsCmd{}, &describeCmd{}, &logsCmd{},
		&versionsCmd{}, &rollbackCmd{}, &rmCmd{}, &triggersCmd{},
		&topicsCmd{}, &subsCmd{},
		&loginCmd{}, &logoutCmd{}, &whoamiCmd{}, &tokensCmd{}, &secretsCmd{},
		&benchCmd{}, &versionCmd{}, &completionCmd{}, &helpCmd{},
	}
}

// lookup returns the command called name, or nil.
func lookup(name string) command {
	for _, c := range commands() {
		if c.info().name == name {
			return c
		}
	}
	return nil
}

// suggestCommand returns ` (did you mean "x"?)` for a near miss.
func suggestCommand(name string) string {
	aliases := map[string]string{"list": "ls", "remove": "rm", "delete": "rm", "get": "describe", "show": "describe",
		"log": "logs", "call": "invoke", "run": "invoke", "serve": "server"}
	if a, ok := aliases[name]; ok {
		return fmt.Sprintf(" (did you mean %q?)", a)
	}
	best, bestD := "", 3
	for _, c := range commands() {
		if d := editDistance(name, c.info().name); d < bestD {
			best, bestD = c.info().name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// printOverview writes `duct help`.
func printOverview(w io.Writer) {
	fmt.Fprint(w, `Duct runs your functions on your own machine: hand it a folder or a file,
get a URL.

Usage:
  duct [--server URL] <command> [arguments] [flags]
`)
	group := ""
	for _, c := range commands() {
		in := c.info()
		if in.group != group {
			group = in.group
			fmt.Fprintf(w, "\n%s:\n", group)
		}
		fmt.Fprintf(w, "  %-11s %s\n", in.name, in.summary)
	}
	fmt.Fprint(w, `
Environment:
  DUCT_SERVER       server URL, like --server (default `+defaultServer+`)
  DUCT_TOKEN        bearer token the API calls send (else what 'duct login' stored)
  DUCT_ADMIN_TOKEN  for 'duct server': a token it accepts as admin
  DUCT_SECRET_KEY   for 'duct server': the key (base64, 32 bytes) that encrypts secrets

Get started:
  duct dev ./functions       # a local server that deploys and redeploys a folder
  duct deploy ./hello        # or deploy to a running server
  duct invoke hello

Run 'duct help <command>' or 'duct <command> -h' for a command's flags and
examples.
`)
}

// printHelp writes a command's help.
func printHelp(w io.Writer, c command, fs *flagSet) {
	in := c.info()
	fmt.Fprintf(w, "Usage: duct %s", in.name)
	if in.usage != "" {
		fmt.Fprintf(w, " %s", in.usage)
	}
	fmt.Fprintf(w, "\n\n%s\n", strings.TrimSpace(in.help))
	if in.examples != "" {
		fmt.Fprint(w, "\nExamples:\n")
		for _, line := range strings.Split(strings.TrimSpace(in.examples), "\n") {
			fmt.Fprintf(w, "  %s\n", strings.TrimSpace(line))
		}
	}
	hasFlags := false
	fs.VisitAll(func(f *flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, "\nFlags:\n")
		fs.printDefaults(w)
	}
}
