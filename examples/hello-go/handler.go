// Package function is the hello-go example: an HTTP function in Go.
//
// Duct builds this file into a small program around Handle. The handler
// sees the request as the gateway received it, minus the /fn/hello-go
// prefix, and writes the response with net/http as usual.
package function

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
)

// Handle greets the name given in the query (?name=Ada) or in a JSON body
// ({"name":"Ada"}), and the world when neither says.
func Handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		reply(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET or POST"})
		return
	}
	name := r.URL.Query().Get("name")
	if name == "" && isJSON(r.Header.Get("Content-Type")) {
		var in struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": `the body must be a JSON object such as {"name":"Ada"}`})
			return
		}
		name = in.Name
	}
	if name == "" {
		name = "world"
	}
	// Standard output and standard error are the function's log.
	fmt.Println("greeting", name)
	w.Header().Set("X-Runtime", "go")
	reply(w, http.StatusOK, map[string]string{"greeting": "Hello, " + name})
}

func reply(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func isJSON(contentType string) bool {
	t, _, _ := mime.ParseMediaType(contentType)
	return t == "application/json"
}
