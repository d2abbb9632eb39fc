package builder

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/duct-dev/duct"
	"github.com/duct-dev/duct/internal/shim"
)

// goMainDir is where the generated main package goes inside the source.
const goMainDir = "ductmain"

// goBinary is the built program inside the artifact.
const goBinary = "bin/fn"

// goPackage is what the builder learns from parsing the source's root
// package.
type goPackage struct {
	name    string
	exports map[string]*goDecl // exported top-level functions and variables
	nonStd  bool               // imports something outside the standard library
	modPath string             // from go.mod; empty without one
}

// goDecl is an exported top-level function or variable.
type goDecl struct {
	fn      *ast.FuncDecl     // nil for a variable
	file    string            // where it is declared, relative to the source
	imports map[string]string // the file's imports: name used → path
	fset    *token.FileSet
}

func inspectGo(dir string) (*goPackage, error) {
	files := filesWithExt(dir, ".go")
	fset := token.NewFileSet()
	p := &goPackage{exports: map[string]*goDecl{}}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, filepath.Join(dir, f), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, &duct.BuildError{Reason: "syntax error: " + trimDir(err.Error(), dir)}
		}
		if p.name == "" {
			p.name = af.Name.Name
		} else if p.name != af.Name.Name {
			return nil, &duct.BuildError{Reason: fmt.Sprintf("files in one directory declare packages %s and %s", p.name, af.Name.Name)}
		}
		imports := map[string]string{}
		for _, im := range af.Imports {
			path := strings.Trim(im.Path.Value, `"`)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				p.nonStd = true
			}
			name := path[strings.LastIndex(path, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = path
		}
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					p.exports[d.Name.Name] = &goDecl{fn: d, file: f, imports: imports, fset: fset}
				}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, spec := range d.Specs {
					for _, n := range spec.(*ast.ValueSpec).Names {
						if n.IsExported() {
							p.exports[n.Name] = &goDecl{file: f, imports: imports, fset: fset}
						}
					}
				}
			}
		}
	}
	if p.name == "" {
		return nil, duct.Invalid("source", "no Go source file in the top directory")
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
		m := moduleRE.FindSubmatch(raw)
		if m == nil {
			return nil, duct.Invalid("go.mod", "no module line")
		}
		p.modPath = strings.Trim(string(m[1]), `"`)
	}
	return p, nil
}

var moduleRE = regexp.MustCompile(`(?m)^\s*module\s+(\S+)`)

func (b *Builder) buildGo(ctx context.Context, spec duct.Function, src, out string, lw *logWriter) (*Result, error) {
	pkg, err := inspectGo(src)
	if err != nil {
		return nil, err
	}
	goTool := b.cfg.Tools.Go.Path
	// Vendored modules are used as they are; otherwise go.mod may be
	// completed (go.sum written) from the module proxy.
	mod := "-mod=mod"
	if firstExisting(src, filepath.Join("vendor", "modules.txt")) != "" {
		mod = "-mod=vendor"
	}
	env := append(hostEnv(binDir(goTool)), "CGO_ENABLED=0", "GOFLAGS="+mod, "GOTOOLCHAIN=local", "GOWORK=off")
	if b.cfg.GoCache != "" {
		env = append(env, "GOCACHE="+b.cfg.GoCache)
	}
	if b.cfg.GoModCache != "" {
		env = append(env, "GOMODCACHE="+b.cfg.GoModCache)
	}
	generatedMod := pkg.modPath == ""
	if generatedMod {
		pkg.modPath = "ductfn"
		mod := fmt.Sprintf("module %s\n\ngo %s\n", pkg.modPath, goLangVersion(b.cfg.Tools.Go.Version))
		if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644); err != nil {
			return nil, err
		}
	}
	run1 := duct.RunSpec{Protocol: duct.ProtocolShim, Command: []string{goBinary}}
	target := "./" + goMainDir
	if pkg.name == "main" {
		lw.Printf("go: package main: a program serving $PORT itself")
		run1.Protocol, target = duct.ProtocolPort, "."
	} else {
		decl := pkg.exports[spec.Handler]
		if decl == nil {
			return nil, &duct.BuildError{Reason: fmt.Sprintf("package %s has no exported function %s%s",
				pkg.name, spec.Handler, foundFuncs(pkg.exports))}
		}
		if why := decl.signatureProblem(); why != "" {
			return nil, &duct.BuildError{Reason: why}
		}
		lw.Printf("go: package %s, handler %s (%s)", pkg.name, spec.Handler, spec.Signature)
		files, err := shim.GoFiles(pkg.modPath, spec.Handler)
		if err != nil {
			return nil, duct.Invalid("handler", "%v", err)
		}
		dir := filepath.Join(src, goMainDir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
				return nil, err
			}
		}
	}
	if generatedMod && pkg.nonStd {
		if output, err := run(ctx, lw, src, env, "resolving imports with go mod tidy", goTool, "mod", "tidy"); err != nil {
			return nil, withProxyHint(err, output)
		}
	}
	bin := filepath.Join(out, goBinary)
	// No VCS stamp: the source may sit below some repository on the
	// server, which is not the function's.
	output, err := run(ctx, lw, src, env, "go build", goTool, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, target)
	if err != nil {
		var be *duct.BuildError
		if errors.As(err, &be) {
			if msg := firstCompileError(output); msg != "" {
				be.Reason = "compile failed: " + msg
			}
		}
		return nil, withProxyHint(err, output)
	}
	// Files beside the code (templates, data) ship with the binary.
	assets := func(rel string, d os.DirEntry) bool {
		return rel == goMainDir || rel == "vendor" || rel == "go.mod" || rel == "go.sum" ||
			(!d.IsDir() && strings.HasSuffix(rel, ".go"))
	}
	if err := copyTree(src, out, assets); err != nil {
		return nil, err
	}
	return &Result{Run: run1}, nil
}

// withProxyHint adds to a build error caused by an unreachable module
// proxy what to do about it.
func withProxyHint(err error, output string) error {
	var be *duct.BuildError
	if errors.As(err, &be) && unreachable(output) {
		be.Reason += " (the Go module proxy is not reachable from the server: give it network access or set GOPROXY, " +
			"or vendor the modules with go mod vendor)"
	}
	return err
}

// goLangVersion turns "go version go1.26.8 linux/amd64" into "1.26".
func goLangVersion(v string) string {
	m := regexp.MustCompile(`go(\d+)\.(\d+)`).FindStringSubmatch(v)
	if m == nil {
		return "1.22"
	}
	return m[1] + "." + m[2]
}

func foundFuncs(funcs map[string]*goDecl) string {
	if len(funcs) == 0 {
		return " (it exports no functions)"
	}
	names := make([]string, 0, len(funcs))
	for n := range funcs {
		names = append(names, n)
	}
	sort.Strings(names)
	return " (exported: " + strings.Join(names, ", ") + ")"
}

// firstCompileError picks the first "file:line:col: message" of go build
// output, which -trimpath and the build directory make relative to the
// source.
func firstCompileError(output string) string {
	for _, line := range strings.Split(output, "\n") {
		line = strings.TrimPrefix(line, "./")
		if compileErrRE.MatchString(line) {
			return shorten(line)
		}
	}
	return ""
}

var compileErrRE = regexp.MustCompile(`^\S+\.go:\d+:\d+: `)

func trimDir(s, dir string) string {
	s = strings.ReplaceAll(s, dir+string(filepath.Separator), "")
	return strings.TrimPrefix(s, "./")
}
