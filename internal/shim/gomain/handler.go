package main

import (
	"io"
	"net/http"
)

// This stand-in is replaced by the handler.go that shim.GoFiles generates.

const handlerName = "hello"

var userHandler interface{} = func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "hello from the Duct Go shim\n")
}
