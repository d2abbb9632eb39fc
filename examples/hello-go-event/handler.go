// Package function is the hello-go-event example: an event function in Go
// with typed input and output.
//
// Duct decodes the event's JSON into Input, calls Handle and answers its
// result as JSON. Over HTTP the event is the request body; from a trigger it
// is the CloudEvent's data.
package function

import (
	"context"
	"errors"
	"fmt"
)

// Input is the event: {"name":"Ada"}.
type Input struct {
	Name string `json:"name"`
}

// Output is the result: {"greeting":"Hello, Ada"}.
type Output struct {
	Greeting string `json:"greeting"`
}

// Handle greets in.Name. An error answers 500 with
// {"errorType":"…","errorMessage":"…"}.
func Handle(ctx context.Context, in Input) (Output, error) {
	if in.Name == "" {
		return Output{}, errors.New(`name is missing: send {"name":"Ada"}`)
	}
	fmt.Println("greeting", in.Name)
	return Output{Greeting: "Hello, " + in.Name}, nil
}
