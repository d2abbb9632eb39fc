package pubsub

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/duct-dev/duct/internal/broker"
)

// TestRestartKeepsMessages: messages acknowledged by Publish and not yet
// acknowledged by a subscriber are delivered after the broker restarts,
// including those a subscriber had leased when it stopped.
func TestRestartKeepsMessages(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	nb, err := broker.Open(ctx, broker.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, nb, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateTopic(ctx, Topic{Name: "durable"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateSubscription(ctx, Subscription{Name: "durable-sub", Topic: "durable", AckDeadline: time.Minute}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := range 20 {
		msgs := make([]Message, 1+i%5)
		for j := range msgs {
			msgs[j] = Message{Data: []byte(fmt.Sprintf("%d-%d", i, j))}
			want[string(msgs[j].Data)] = true
		}
		publish(t, p, "durable", msgs...)
	}
	leased := pullN(t, p, "durable-sub", 5, 5*time.Second) // held when the broker stops
	_ = leased
	p.Close()
	nb.Close()

	p2, _ := testBrokerAt(t, dir)
	got := pullN(t, p2, "durable-sub", len(want), 20*time.Second)
	for _, r := range got {
		delete(want, string(r.Message.Data))
	}
	if len(want) > 0 {
		t.Fatalf("lost after restart: %v", want)
	}
	ack(t, p2, "durable-sub", got...)
}

// TestKillKeepsAcknowledgedPublishes kills (SIGKILL) a process that
// publishes in a loop and checks that every publish it reported
// acknowledged is delivered after a restart on the same store.
func TestKillKeepsAcknowledgedPublishes(t *testing.T) {
	if dir := os.Getenv("DUCT_PUBSUB_KILL_DIR"); dir != "" {
		killChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	dir := t.TempDir()
	ctx := context.Background()
	func() {
		p, nb := openAt(t, dir)
		defer nb.Close()
		defer p.Close()
		if _, err := p.CreateTopic(ctx, Topic{Name: "killed"}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.CreateSubscription(ctx, Subscription{Name: "killed-sub", Topic: "killed"}); err != nil {
			t.Fatal(err)
		}
	}()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillKeepsAcknowledgedPublishes$")
	cmd.Env = append(os.Environ(), "DUCT_PUBSUB_KILL_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	deadline := time.After(30 * time.Second)
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
read:
	for len(acked) < 3000 {
		select {
		case l, ok := <-lines:
			if !ok {
				break read
			}
			for _, d := range strings.Fields(l) {
				acked[d] = true
			}
		case <-deadline:
			break read
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	for range lines {
	}
	_ = cmd.Wait()
	if len(acked) < 100 {
		t.Fatalf("the child acknowledged only %d publishes", len(acked))
	}

	p, _ := testBrokerAt(t, dir)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(acked) > 0 {
		got, err := p.Pull(pctx, "killed-sub", MaxPullMessages, true)
		if err != nil {
			t.Fatalf("%d acknowledged publishes never delivered after the kill: %v", len(acked), err)
		}
		for _, r := range got {
			delete(acked, string(r.Message.Data))
		}
		ack(t, p, "killed-sub", got...)
	}
}

func openAt(t *testing.T, dir string) (*Broker, *broker.Broker) {
	nb, err := broker.Open(context.Background(), broker.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(context.Background(), nb, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return p, nb
}

// killChild publishes from several goroutines until killed, printing the
// data of each message as soon as its publish is acknowledged.
func killChild(dir string) {
	ctx := context.Background()
	nb, err := broker.Open(ctx, broker.Config{DataDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p, err := New(ctx, nb, Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	out := make(chan string, 64)
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				n := 1 + (i+g)%50
				msgs := make([]Message, n)
				var line strings.Builder
				for j := range msgs {
					d := fmt.Sprintf("g%d-%d-%d", g, i, j)
					msgs[j] = Message{Data: []byte(d)}
					line.WriteString(d + " ")
				}
				if _, err := p.Publish(ctx, "killed", msgs); err != nil {
					fmt.Fprintln(os.Stderr, "publish:", err)
					os.Exit(1)
				}
				out <- line.String()
			}
		}()
	}
	for l := range out {
		fmt.Fprintln(w, l)
		w.Flush()
	}
}
