package cli

import (
	"io"
	"os"
)

// isTerminal reports whether r is a terminal (a character device), so
// that prompts are shown only to people.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
