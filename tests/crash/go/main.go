// A small real Go program that crashes (the crash assembler's oracle, issue 11).
//
//	SENTRY_OUT=event.jsonl crash-go SCENARIO
//
// The official SDK (Debian's golang-github-getsentry-sentry-go-dev) captures the panic
// in-process the way an app using it does (a deferred recover that reports and panics
// again); its transport appends the event's JSON to $SENTRY_OUT (no network). The
// re-panic then makes the Go runtime print its own trace on stderr ("panic: ...
// [recovered]", "goroutine N [running]:", frames), exactly as a dyno prints it.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/getsentry/sentry-go"
)

type fileTransport struct{ path string }

func (t *fileTransport) Configure(sentry.ClientOptions) {}
func (t *fileTransport) Flush(time.Duration) bool       { return true }
func (t *fileTransport) SendEvent(e *sentry.Event) {
	b, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	f, err := os.OpenFile(t.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s\n", b)
}

// report is what an app puts at the top of main and of every goroutine. The SDK's
// capture and the re-panic stand on one line so that this frame has the same line number
// in the SDK's stack (taken at Recover) and in the runtime's (printed at the re-panic).
func report() {
	if r := recover(); r != nil { sentry.CurrentHub().Recover(r); panic(r) }
}

type Cart struct{ items []string }

func (c *Cart) Item(i int) string { return c.items[i] }

func lookup(c *Cart, i int) string { return c.Item(i) }

func handle(n int) string {
	c := &Cart{items: []string{"apple", "pear", "fig"}}
	return lookup(c, n)
}

var ErrStock = errors.New("stock service unavailable")

func reserve(sku string) {
	if sku != "" {
		panic(ErrStock)
	}
}

func worker(sku string, wg *sync.WaitGroup) {
	defer report()
	reserve(sku)
	wg.Done() // not deferred: on the re-panic a deferred Done let main return (exit 0) first
}

type Order struct{ Customer *Customer }
type Customer struct{ Name string }

func customerName(o *Order) string { return o.Customer.Name }

func unitPrice(total, qty int) int { return total / qty }

func tally(counts map[string]int, sku string) { counts[sku]++ }

func quantity(v interface{}) int { return v.(int) }

func main() {
	err := sentry.Init(sentry.ClientOptions{
		Dsn:       "https://public@sentry.invalid/1",
		Transport: &fileTransport{path: os.Getenv("SENTRY_OUT")},
	})
	if err != nil {
		panic(err)
	}
	defer report()
	switch os.Args[1] {
	case "nested":
		fmt.Println(handle(len(os.Args) + 3))
	case "goroutine":
		var wg sync.WaitGroup
		wg.Add(1)
		go worker("sku-42", &wg)
		wg.Wait()
	case "nilptr":
		fmt.Println(customerName(&Order{}))
	case "divzero":
		fmt.Println(unitPrice(12, len(os.Args)-2))
	case "nilmap":
		var counts map[string]int
		tally(counts, "sku-1")
	case "assert":
		fmt.Println(quantity("3"))
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario")
		os.Exit(2)
	}
}
