package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/client"
)

// invokeCmd is `duct invoke`.
type invokeCmd struct {
	data, method, path string
	headers            listFlag
	include            bool
	async, json        bool
}

func (c *invokeCmd) info() cmdInfo {
	return cmdInfo{
		name:    "invoke",
		group:   "Functions",
		summary: "Call a function and print its response",
		usage:   "NAME [flags]",
		help: `
Invoke sends an HTTP request to the function NAME through the server's
gateway (/fn/NAME) and prints the response body to stdout. The method is
GET, or POST when --data is given. A body that parses as JSON is sent as
application/json unless -H sets a Content-Type.

A response status outside 2xx still prints its body, and duct exits with
status 1.

A function whose invoke mode is token gets duct's API token (DUCT_TOKEN, else
the one duct login stored), which the gateway checks and removes. A public
function gets no token from duct: its code would see it. To learn the mode,
invoke first describes the function; a token that may not (role invoke) is
sent as it is made for invoking.

With --async the server queues the invocation (Prefer: respond-async) and
answers once it is stored; invoke prints its id and where to read its
outcome (duct invocations get ID). The function runs soon after, with
retries if it fails. An Idempotency-Key header (-H) makes a repeated
submission with the same key return the first one's id.`,
		examples: `
duct invoke hello
duct invoke hello --data '{"name": "Ada"}'
duct invoke thumbnail --data @photo.jpg -H 'Content-Type: image/jpeg' > thumb.jpg
echo '{"n": 3}' | duct invoke double --data -
duct invoke api --method DELETE --path /items/42 --include
duct invoke resize --async --data @job.json -H 'Idempotency-Key: job-42'`,
		complete: "function",
	}
}

func (c *invokeCmd) define(fs *flagSet, e *env) {
	serverFlag(fs, e)
	fs.StringVar(&c.data, "data", "", "request body: a `STRING`, @FILE for a file's content, or - for stdin")
	fs.alias("d", "data")
	fs.StringVar(&c.method, "method", "", "HTTP `method` (default GET, or POST with --data)")
	fs.alias("X", "method")
	fs.StringVar(&c.path, "path", "/", "`path` (and query) after /fn/NAME")
	fs.Var(&c.headers, "header", "request header `'K: V'` (repeatable)")
	fs.alias("H", "header")
	fs.BoolVar(&c.include, "include", false, "print the response status and headers before the body")
	fs.alias("i", "include")
	fs.BoolVar(&c.async, "async", false, "queue the invocation and print its id instead of waiting for the response")
	fs.BoolVar(&c.json, "json", false, "with --async, print the id and location as JSON")
}

func (c *invokeCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "function NAME"); err != nil {
		return err
	}
	switch {
	case c.async && c.include:
		return usageErrorf("--include does not apply to --async: read the outcome with duct invocations get ID")
	case c.json && !c.async:
		return usageErrorf("--json applies to invoke --async (a response is printed as the function sent it)")
	}
	name := args[0]
	header := http.Header{}
	for _, h := range c.headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return usageErrorf("-H %q: want 'Name: value'", h)
		}
		header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	body, hasBody, err := c.body(e)
	if err != nil {
		return err
	}
	method := strings.ToUpper(c.method)
	if method == "" {
		method = http.MethodGet
		if hasBody {
			method = http.MethodPost
		}
	}
	var rd io.Reader
	if hasBody {
		rd = bytes.NewReader(body)
		if header.Get("Content-Type") == "" {
			header.Set("Content-Type", contentType(body))
		}
	}
	cl, err := e.client()
	if err != nil {
		return err
	}
	if header.Get("Authorization") == "" && cl.Token() != "" && wantsToken(ctx, cl, name) {
		header.Set("Authorization", "Bearer "+cl.Token())
	}
	if c.async {
		return c.queue(ctx, e, cl, name, method, header, rd)
	}
	resp, err := cl.Invoke(ctx, name, method, c.path, header, rd)
	if err != nil {
		return fmt.Errorf("invoke %s: %w", name, err)
	}
	defer resp.Body.Close()
	if c.include {
		writeResponseHead(e.stdout, resp)
	}
	if _, err := io.Copy(e.stdout, resp.Body); err != nil {
		return fmt.Errorf("invoke %s: reading the response: %w", name, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		who := "the function"
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			who = "the server" // the gateway's own answer, not the function's
		}
		fmt.Fprintf(e.stderr, "duct: invoke %s: %s answered %s\n", name, who, resp.Status)
		return &exitError{exitFailure}
	}
	return nil
}

// queue submits the invocation to run asynchronously.
func (c *invokeCmd) queue(ctx context.Context, e *env, cl *client.Client, name, method string, header http.Header, body io.Reader) error {
	a, err := cl.InvokeAsync(ctx, name, method, c.path, header, body)
	if err != nil {
		return fmt.Errorf("invoke %s: %w", name, err)
	}
	if c.json {
		return writeJSON(e.stdout, a)
	}
	fmt.Fprintf(e.stdout, "%s\n", a.ID)
	fmt.Fprintf(e.stderr, "queued: follow it with duct invocations get %s --wait (%s)\n", a.ID, a.URL)
	return nil
}

// wantsToken reports whether to send the client's API token with an
// invocation of name: when the function's invoke mode is token, and when
// the token may not describe functions (role invoke: a token made to be
// sent to functions). A public function's code would see the token, so an
// admin or deploy token never goes to one.
func wantsToken(ctx context.Context, cl *client.Client, name string) bool {
	fi, err := cl.Function(ctx, name)
	switch {
	case err == nil:
		return fi.Active != nil && fi.Active.Spec.Invoke == duct.InvokeToken
	case errors.Is(err, duct.ErrForbidden):
		return true
	}
	return false // not found, or a token the server does not know
}

// body reads --data.
func (c *invokeCmd) body(e *env) ([]byte, bool, error) {
	switch {
	case c.data == "":
		return nil, false, nil
	case c.data == "-":
		b, err := io.ReadAll(e.stdin)
		if err != nil {
			return nil, false, fmt.Errorf("invoke: reading stdin: %w", err)
		}
		return b, true, nil
	case strings.HasPrefix(c.data, "@"):
		b, err := os.ReadFile(c.data[1:])
		if err != nil {
			return nil, false, fmt.Errorf("invoke: --data: %w", err)
		}
		return b, true, nil
	}
	return []byte(c.data), true, nil
}

// contentType guesses a body's media type: JSON, text or bytes.
func contentType(b []byte) string {
	switch {
	case json.Valid(b):
		return "application/json"
	case utf8.Valid(b):
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// writeResponseHead writes the status line and headers, as curl -i does.
func writeResponseHead(w io.Writer, resp *http.Response) {
	fmt.Fprintf(w, "%s %s\n", resp.Proto, resp.Status)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range resp.Header[k] {
			fmt.Fprintf(w, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintln(w)
}
