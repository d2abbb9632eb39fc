// Command gomain is the program Duct builds around a Go function: it serves
// the handler that handler.go names, on the instance contract's fast path
// (docs/instance-contract.md). Duct copies these files, with a generated
// handler.go, into a directory of the function's module; the handler.go here
// is a stand-in so that the template compiles and runs on its own.
//
// The files use only the standard library and no language feature newer
// than Go 1.16, because they compile under the language version of the
// user's go.mod.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	h, err := newHandler(userHandler)
	if err != nil {
		fmt.Fprintf(os.Stderr, "duct: %s: %v\n", handlerName, err)
		os.Exit(1)
	}
	// DUCT_CHECK asks only whether the handler is usable, so that a build
	// can reject an unsupported signature before deploying it.
	if os.Getenv("DUCT_CHECK") != "" {
		return
	}
	ln, err := listener()
	if err != nil {
		fmt.Fprintf(os.Stderr, "duct: listen: %v\n", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: h}
	if ctl := fdFile("DUCT_CONTROL_FD", "control"); ctl != nil {
		if _, err := ctl.Write([]byte("{\"ready\":true}\n")); err != nil {
			fmt.Fprintf(os.Stderr, "duct: control: %v\n", err)
			os.Exit(1)
		}
		go exitOnEOF(ctl)
	}
	stopped := make(chan struct{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		srv.Shutdown(context.Background())
		close(stopped)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "duct: serve: %v\n", err)
		os.Exit(1)
	}
	<-stopped
}

// listener returns the socket Duct passed in, or binds 127.0.0.1:$PORT
// when the program runs on its own.
func listener() (net.Listener, error) {
	if f := fdFile("DUCT_LISTEN_FD", "listener"); f != nil {
		defer f.Close()
		return net.FileListener(f)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	return net.Listen("tcp", "127.0.0.1:"+port)
}

func fdFile(env, name string) *os.File {
	v := os.Getenv(env)
	if v == "" {
		return nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		fmt.Fprintf(os.Stderr, "duct: %s=%q is not a file descriptor\n", env, v)
		os.Exit(1)
	}
	return os.NewFile(uintptr(fd), name)
}

// exitOnEOF ends the process when Duct closes the control socket, so that
// no instance outlives the daemon that owns it.
func exitOnEOF(ctl *os.File) {
	buf := make([]byte, 512)
	for {
		if _, err := ctl.Read(buf); err != nil {
			os.Exit(0)
		}
	}
}
