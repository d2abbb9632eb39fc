// Package cli is the duct command: one type per subcommand, their help
// text, flags, output (tables for people, --json for scripts) and deploy
// progress. It talks to servers only through internal/client, and runs
// them (duct server, duct dev) through internal/daemon.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/client"
	"github.com/duct-dev/duct/internal/daemon"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// defaultServer is the server used without --server or DUCT_SERVER.
const defaultServer = "http://127.0.0.1:8080"

// Main runs the duct command with args (without the program name) and
// returns the process exit code: 0 on success, 1 on failure, 2 on a usage
// error. It reads the environment (DUCT_SERVER, DUCT_TOKEN,
// DUCT_ADMIN_TOKEN, DUCT_SECRET_KEY, HOME, XDG_CONFIG_HOME) and the
// credentials duct login stores, but never exits or touches the process
// otherwise.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	return e.main(ctx, args)
}

// env is what a command runs with: its streams, the environment and the
// global options.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	server string // --server, DUCT_SERVER
}

// client returns an API client for the selected server, sending the
// token (DUCT_TOKEN, else what duct login stored for that server).
func (e *env) client() (*client.Client, error) {
	return e.clientWith(e.token())
}

// clientWith returns an API client for the selected server that sends
// token.
func (e *env) clientWith(token string) (*client.Client, error) {
	c, err := client.New(e.server, token, client.WithUserAgent("duct/"+daemon.Version))
	if err != nil {
		return nil, usageErrorf("--server: %v", err)
	}
	return c, nil
}

// main runs the command line args: global flags, then a command.
func (e *env) main(ctx context.Context, args []string) int {
	e.server = e.getenv("DUCT_SERVER")
	if e.server == "" {
		e.server = defaultServer
	}
	global := newFlagSet("duct")
	global.StringVar(&e.server, "server", e.server, "")
	showVersion := global.Bool("version", false, "")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printOverview(e.stdout)
			return exitOK
		}
		fmt.Fprintf(e.stderr, "duct: %v\nRun 'duct help' for usage.\n", err)
		return exitUsage
	}
	args = global.Args()
	if *showVersion {
		args = []string{"version"}
	}
	if len(args) == 0 {
		printOverview(e.stderr)
		return exitUsage
	}
	if code, ok := e.hidden(ctx, args); ok {
		return code
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(e.stderr, "duct: unknown command %q%s\nRun 'duct help' for the list of commands.\n", args[0], suggestCommand(args[0]))
		return exitUsage
	}
	return e.runCommand(ctx, cmd, args[1:])
}

// runCommand parses a command's flags, runs it and reports its error.
func (e *env) runCommand(ctx context.Context, cmd command, args []string) int {
	fs := newFlagSet("duct " + cmd.info().name)
	cmd.define(fs, e)
	pos, err := fs.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(e.stdout, cmd, fs)
		return exitOK
	}
	if err != nil {
		err = &usageError{err.Error()}
	} else {
		err = cmd.run(ctx, e, pos)
	}
	return e.report(cmd.info().name, err)
}

// report prints err the way duct reports failures and returns the exit
// code it stands for.
func (e *env) report(name string, err error) int {
	var ue *usageError
	var xe *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &xe):
		return xe.code
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "duct %s: %v\nRun 'duct %s -h' for usage.\n", name, err, name)
		return exitUsage
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(e.stderr, "duct: interrupted")
		return exitFailure
	}
	fmt.Fprintf(e.stderr, "duct: %v\n", err)
	if errors.Is(err, duct.ErrUnauthorized) && name != "login" && !strings.Contains(err.Error(), "duct login") {
		fmt.Fprintln(e.stderr, "duct: log in with 'duct login' (or set DUCT_TOKEN) using a token of this server.")
	}
	if errors.Is(err, client.ErrUnreachable) {
		fmt.Fprintln(e.stderr, "duct: is a server running there? Start one with 'duct server', or point --server (or DUCT_SERVER) at yours.")
	}
	return exitFailure
}

// usageError is a command line the command cannot run: exit code 2.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// exitError ends a command with a code after it reported the failure
// itself.
type exitError struct{ code int }

func (x *exitError) Error() string { return fmt.Sprintf("exit status %d", x.code) }

// wantArgs checks the number of positional arguments.
func wantArgs(args []string, min, max int, what string) error {
	switch {
	case len(args) < min:
		return usageErrorf("missing %s", what)
	case len(args) > max:
		return usageErrorf("unexpected argument %q", args[max])
	}
	return nil
}

// serverFlag defines --server on a command that talks to a server.
func serverFlag(fs *flagSet, e *env) {
	fs.StringVar(&e.server, "server", e.server, "server `URL` (or set DUCT_SERVER)")
}

// jsonFlag defines --json.
func jsonFlag(fs *flagSet, v *bool) {
	fs.BoolVar(v, "json", false, "print the API's JSON instead of a table")
}

// opError is a server's message with the operation and name the CLI
// already states taken off its front.
type opError struct {
	msg string
	err error
}

func (o *opError) Error() string { return o.msg }
func (o *opError) Unwrap() error { return o.err }

// trimOp drops `op "name": ` from the front of err's message, since duct
// prints "op name: " itself.
func trimOp(err error, op, name string) error {
	if rest, ok := strings.CutPrefix(err.Error(), op+" "+strconv.Quote(name)+": "); ok {
		return &opError{msg: rest, err: err}
	}
	return err
}

// wrap prefixes err with the operation, leaving usage errors as they are:
// their report names the command already.
func wrap(op string, err error) error {
	var ue *usageError
	if errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}
