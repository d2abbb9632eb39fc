package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/api"
	"github.com/duct-dev/duct/internal/client"
)

// devWatch deploys the functions of a folder and redeploys them when
// their files change. Dev's loop goroutine owns it.
type devWatch struct {
	root, dir string // absolute; as given
	ignore    string // the data dir: never part of a function
	cl        *client.Client
	out       io.Writer           // results
	errOut    io.Writer           // build logs and errors
	folders   []string            // function folders found by the last scan
	funcs     map[string]*devFunc // by folder
}

// devFunc is one watched function folder.
type devFunc struct {
	folder string
	name   string
	seen   snapshot // files as last deployed (or tried)
	res    *api.DeployResult
	err    error
}

// scan finds function folders and deploys those that are new or whose
// files changed. The first scan deploys in parallel and prints a table of
// URLs; later ones print each outcome.
func (w *devWatch) scan(ctx context.Context, first bool) {
	folders, err := discover(w.root, w.ignore)
	if err != nil {
		fmt.Fprintf(w.errOut, "duct: dev: %v\n", err)
		return
	}
	w.folders = folders
	var todo []*devFunc
	why := map[*devFunc]string{}
	for _, folder := range folders {
		snap, err := w.snapshot(folder)
		if err != nil {
			continue // changing under us: look again next time
		}
		f := w.funcs[folder]
		switch {
		case f == nil:
			f = &devFunc{folder: folder}
			w.funcs[folder] = f
			why[f] = "new function, deploying"
		case snap.changed(f.seen) != "":
			why[f] = snap.changed(f.seen) + " changed, redeploying"
		default:
			continue
		}
		f.seen = snap
		todo = append(todo, f)
	}
	if first {
		w.deployAll(ctx, todo)
		if ctx.Err() == nil {
			w.table()
		}
		return
	}
	for _, f := range todo {
		if ctx.Err() != nil {
			return // interrupted: dev is stopping
		}
		// Let a burst of writes (an editor saving) settle.
		time.Sleep(50 * time.Millisecond)
		if snap, err := w.snapshot(f.folder); err == nil {
			f.seen = snap
		}
		fmt.Fprintf(w.out, "%s: %s\n", w.label(f), why[f])
		w.deploy(ctx, f)
		w.report(f)
	}
}

// snapshot takes a function folder's files as its bundle would hold them.
func (w *devWatch) snapshot(folder string) (snapshot, error) {
	src := &source{dir: folder, exclude: w.exclusions(folder)}
	return take(src)
}

// exclusions lists what lies inside folder but is not part of its
// function: other function folders, and the data dir.
func (w *devWatch) exclusions(folder string) map[string]bool {
	ex := map[string]bool{}
	for _, other := range append([]string{w.ignore}, w.folders...) {
		if other == folder {
			continue
		}
		if rel, err := filepath.Rel(folder, other); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			ex[filepath.ToSlash(rel)] = true
		}
	}
	return ex
}

// deployAll deploys functions in parallel, then reports the failures.
func (w *devWatch) deployAll(ctx context.Context, fns []*devFunc) {
	var wg sync.WaitGroup
	for _, f := range fns {
		src := w.prepare(f) // names are settled one by one
		if src == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.push(ctx, f, src)
		}()
	}
	wg.Wait()
	for _, f := range fns {
		if f.err != nil && ctx.Err() == nil {
			w.report(f)
		}
	}
}

// deploy deploys one function folder and leaves the outcome in f.
func (w *devWatch) deploy(ctx context.Context, f *devFunc) {
	if src := w.prepare(f); src != nil {
		w.push(ctx, f, src)
	}
}

// prepare loads a function folder and settles its name; on failure it
// leaves the error in f and returns nil.
func (w *devWatch) prepare(f *devFunc) *source {
	f.res, f.err = nil, nil
	src, err := loadSource(f.folder)
	if err != nil {
		f.err = err
		return nil
	}
	src.exclude = w.exclusions(f.folder)
	name, err := src.name("")
	if err != nil {
		f.err = err
		return nil
	}
	if other := w.nameTaken(name, f); other != "" {
		f.err = fmt.Errorf("the name %q is already taken by %s: set another in a duct.yaml", name, other)
		return nil
	}
	f.name = name
	return src
}

// push packs and deploys a prepared function, leaving the outcome in f.
// Several may run at once: each writes only its own f.
func (w *devWatch) push(ctx context.Context, f *devFunc, src *source) {
	d := &specDoc{}
	if src.manifest == nil || src.manifest.Invoke == nil {
		d.Invoke = string(duct.InvokePublic)
	}
	var log strings.Builder // written at once, so parallel deploys do not interleave
	p := &progress{w: &log, prefix: f.name + ": "}
	f.res, f.err = deploySource(ctx, w.cl, src, f.name, d.encode(), p)
	if f.err != nil {
		f.err = trimOp(f.err, "deploy", f.name)
		io.WriteString(w.errOut, log.String())
	}
}

// nameTaken returns the folder of another function called name.
func (w *devWatch) nameTaken(name string, f *devFunc) string {
	for _, folder := range w.folders {
		if o := w.funcs[folder]; o != nil && o != f && o.name == name {
			return w.rel(o.folder)
		}
	}
	return ""
}

// report prints a deploy's outcome.
func (w *devWatch) report(f *devFunc) {
	if f.err != nil {
		fmt.Fprintf(w.errOut, "duct: deploy %s: %v\n", w.label(f), f.err)
		return
	}
	fmt.Fprintln(w.out, resultLine(f.name, f.res))
}

// table prints the functions deployed and a curl line to try one.
func (w *devWatch) table() {
	if len(w.folders) == 0 {
		fmt.Fprintf(w.out, "No functions in %s yet: add a folder with a handler (index.js, main.py, handler.go…) or a duct.yaml.\n", w.dir)
		return
	}
	t := newTable(w.out, "NAME", "RUNTIME", "URL")
	try := ""
	for _, folder := range w.folders {
		f := w.funcs[folder]
		if f == nil {
			continue
		}
		if f.res == nil {
			t.row(w.label(f), "", "(deploy failed: fix it and save to retry)")
			continue
		}
		t.row(f.name, string(f.res.Version.Spec.Runtime), f.res.URL)
		if try == "" {
			try = "curl " + f.res.URL
			if f.res.Version.Spec.Signature == duct.SignatureEvent {
				try = "curl -H 'Content-Type: application/json' -d '{}' " + f.res.URL
			}
		}
	}
	t.flush()
	if try != "" {
		fmt.Fprintf(w.out, "\nTry: %s\n", try)
	}
}

// label names a function in messages: its name, else its folder.
func (w *devWatch) label(f *devFunc) string {
	if f.name != "" {
		return f.name
	}
	return w.rel(f.folder)
}

// rel writes a folder relative to the directory being watched.
func (w *devWatch) rel(folder string) string {
	rel, err := filepath.Rel(w.root, folder)
	if err != nil || rel == "." {
		return w.dir
	}
	return filepath.Join(w.dir, rel)
}
