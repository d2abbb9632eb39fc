package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/duct-dev/duct/internal/client"
	"github.com/duct-dev/duct/internal/deploy"
)

// progress shows a deploy's steps on stderr as the server reports them,
// and keeps the build's output for when the build fails.
type progress struct {
	w       io.Writer
	prefix  string // put before each line, e.g. "hello: " in dev
	steps   bool   // print the steps
	verbose bool   // print build output lines as they come
	log     []string
}

func (p *progress) event(ev deploy.Event) {
	switch {
	case ev.Phase == "log":
		p.log = append(p.log, ev.Message)
		if p.verbose {
			fmt.Fprintf(p.w, "%s  | %s\n", p.prefix, ev.Message)
		}
	case !p.steps || ev.Message == "" || ev.Phase == "done":
	default:
		fmt.Fprintf(p.w, "%s  %-8s %s\n", p.prefix, ev.Phase, ev.Message)
	}
}

// buildLog writes the build output a failed deploy carries (or, if the
// server sent none with the error, the lines it streamed), unless -v
// already printed them.
func (p *progress) buildLog(err error) {
	var ce *client.Error
	text := ""
	if errors.As(err, &ce) {
		text = ce.BuildLog
	}
	if text == "" {
		if p.verbose {
			return
		}
		text = strings.Join(p.log, "\n")
	}
	text = strings.TrimRight(text, "\n")
	if strings.TrimSpace(text) == "" {
		return
	}
	fmt.Fprintf(p.w, "%sbuild log:\n", p.prefix)
	for _, line := range strings.Split(text, "\n") {
		fmt.Fprintf(p.w, "%s  | %s\n", p.prefix, line)
	}
}
