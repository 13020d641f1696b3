// server.go: the zoo protocol (zoo.h) from a goroutine per connection, built twice by the
// zoo test: CGO_ENABLED=0 (a static binary whose Ms are raw clone()s with their g0 stacks in
// the Go heap) and with cgo (cgo.go: Ms made by pthread_create). Each request allocates,
// so the collector runs — and scans goroutine stacks — while the process is captured.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

func sum(n uint64) uint64 {
	v := make([]uint64, n*100)
	for i := range v {
		u := uint64(i)
		v[i] = (u * u) % 7919
	}
	var s uint64
	for _, x := range v {
		s += x
	}
	return s
}

func serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(line), 10, 64)
		if _, err := fmt.Fprintf(c, "%d %d\n", os.Getpid(), sum(n)); err != nil {
			return
		}
	}
}

func main() {
	fmt.Printf("pid %d\n", os.Getpid())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Printf("port %d\nready\n", l.Addr().(*net.TCPAddr).Port)
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if in.Text() == "exit" {
				os.Exit(0)
			}
		}
		os.Exit(0)
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
