package builder

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/printer"
)

// goSignatures is what the Go shim accepts, in words.
const goSignatures = "want func(http.ResponseWriter, *http.Request) for an http function, " +
	"or func(context.Context, T) (U, error) for an event function (the context, the input T, " +
	"the result U and the error may each be left out)"

// signatureProblem says why a handler function cannot be served, or ""
// when it may be. It reads the declaration only, so it refuses just what
// is plainly wrong (too many parameters, a result that is not an error
// where one must be); the shim checks the types for certain when the
// program starts, and the deploy's start check reports what it says.
// Variables (an http.HandlerFunc, say) are left to the shim.
func (d *goDecl) signatureProblem() string {
	if d.fn == nil {
		return ""
	}
	ft := d.fn.Type
	params, results := fieldTypes(ft.Params), fieldTypes(ft.Results)
	why := ""
	switch {
	case ft.TypeParams != nil && len(ft.TypeParams.List) > 0:
		why = "it is generic"
	case len(params) > 0 && isEllipsis(params[len(params)-1]):
		why = "it is variadic"
	case len(params) > 2:
		why = fmt.Sprintf("it takes %d parameters", len(params))
	case len(results) > 2:
		why = fmt.Sprintf("it returns %d results", len(results))
	case d.isHTTP(params, results):
		return ""
	case len(params) == 2 && d.isPkgType(params[0], "net/http", "ResponseWriter"):
		why = "an http handler takes an http.ResponseWriter and an *http.Request, and returns nothing"
	case len(params) == 2 && notContext(d, params[0]):
		why = "the first of two parameters must be a context.Context"
	case len(results) > 0 && notError(results[len(results)-1]):
		why = "the last result must be an error"
	default:
		return ""
	}
	var sig bytes.Buffer
	printer.Fprint(&sig, d.fset, ft)
	pos := d.fset.Position(d.fn.Pos())
	return fmt.Sprintf("%s:%d: %s has an unsupported signature %s: %s; %s",
		d.file, pos.Line, d.fn.Name.Name, sig.String(), why, goSignatures)
}

// fieldTypes lists the type of each parameter or result, one per name.
func fieldTypes(fl *ast.FieldList) []ast.Expr {
	if fl == nil {
		return nil
	}
	var out []ast.Expr
	for _, f := range fl.List {
		n := max(len(f.Names), 1)
		for range n {
			out = append(out, f.Type)
		}
	}
	return out
}

func isEllipsis(e ast.Expr) bool {
	_, ok := e.(*ast.Ellipsis)
	return ok
}

// isHTTP reports func(http.ResponseWriter, *http.Request).
func (d *goDecl) isHTTP(params, results []ast.Expr) bool {
	if len(params) != 2 || len(results) != 0 || !d.isPkgType(params[0], "net/http", "ResponseWriter") {
		return false
	}
	star, ok := params[1].(*ast.StarExpr)
	return ok && d.isPkgType(star.X, "net/http", "Request")
}

// isPkgType reports whether e names type name of the package at path.
func (d *goDecl) isPkgType(e ast.Expr, path, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && d.imports[pkg.Name] == path
}

// notContext reports types that plainly are not a context.Context: a
// predeclared or literal type, or one from net/http. A local or imported
// name may be an alias of it, and is given the benefit of the doubt.
func notContext(d *goDecl, e ast.Expr) bool {
	if sel, ok := e.(*ast.SelectorExpr); ok {
		pkg, ok := sel.X.(*ast.Ident)
		return ok && d.imports[pkg.Name] == "net/http"
	}
	return plainlyNot(e, "")
}

// notError reports types that plainly are not error.
func notError(e ast.Expr) bool { return plainlyNot(e, "error") }

// plainlyNot reports whether e is a type literal, or a predeclared type
// other than except.
func plainlyNot(e ast.Expr, except string) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name != except && predeclared[e.Name]
	case *ast.StarExpr, *ast.ArrayType, *ast.MapType, *ast.ChanType, *ast.FuncType, *ast.StructType:
		return true
	}
	return false
}

var predeclared = map[string]bool{
	"any": true, "bool": true, "byte": true, "complex64": true, "complex128": true, "error": true,
	"float32": true, "float64": true, "int": true, "int8": true, "int16": true, "int32": true, "int64": true,
	"rune": true, "string": true, "uint": true, "uint8": true, "uint16": true, "uint32": true, "uint64": true,
	"uintptr": true,
}
