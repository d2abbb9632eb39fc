// Command duct is Duct's server and command-line client; see 'duct help'.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/duct-dev/duct/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
