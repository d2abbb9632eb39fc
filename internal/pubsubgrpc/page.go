package pubsubgrpc

import (
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// page returns one page of names, sorted, and the token of the next page
// ("" when this is the last). A token is the last name of the page before;
// size 0 or less means everything from the token on.
func page(names []string, size int32, token string) ([]string, string, error) {
	if size < 0 {
		return nil, "", status.Errorf(codes.InvalidArgument, "page_size %d: want 0 or more", size)
	}
	slices.Sort(names)
	if token != "" {
		i, _ := slices.BinarySearch(names, token)
		for i < len(names) && names[i] <= token {
			i++
		}
		names = names[i:]
	}
	if size == 0 || len(names) <= int(size) {
		return names, "", nil
	}
	names = names[:size]
	return names, names[len(names)-1], nil
}
