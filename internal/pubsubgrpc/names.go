package pubsubgrpc

import (
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Google names resources projects/PROJECT/topics/NAME and
// projects/PROJECT/subscriptions/NAME. A Duct server holds one namespace:
// any PROJECT names the same topic NAME, and answers use the project the
// request named.
const (
	topics        = "topics"
	subscriptions = "subscriptions"
)

// parseName splits projects/PROJECT/KIND/NAME into PROJECT and NAME. The
// name's own rules are the broker's to check.
func parseName(full, kind string) (project, name string, err error) {
	parts := strings.Split(full, "/")
	if len(parts) != 4 || parts[0] != "projects" || parts[1] == "" || parts[2] != kind || parts[3] == "" {
		if full == "" {
			return "", "", status.Errorf(codes.InvalidArgument, "missing %s name: want projects/PROJECT/%s/NAME", singular(kind), kind)
		}
		return "", "", status.Errorf(codes.InvalidArgument, "invalid %s name %q: want projects/PROJECT/%s/NAME", singular(kind), full, kind)
	}
	return parts[1], parts[3], nil
}

// parseProject reads projects/PROJECT, the parent of list calls.
func parseProject(full string) (string, error) {
	p, ok := strings.CutPrefix(full, "projects/")
	if !ok || p == "" || strings.Contains(p, "/") {
		return "", status.Errorf(codes.InvalidArgument, "invalid project %q: want projects/PROJECT", full)
	}
	return p, nil
}

func fullName(project, kind, name string) string {
	return "projects/" + project + "/" + kind + "/" + name
}

func singular(kind string) string { return strings.TrimSuffix(kind, "s") }
