// Command echoserver is the e2e lab's "pod": a TCP and UDP server that answers every connection or
// datagram with one line naming the pod and the client address it saw, then echoes what it got:
//
//	pod=<name> client=<ip>:<port> proto=<tcp|udp> port=<listen port>\n
//	<bytes received> (TCP: the first line the client sent, if any, within 2 s; UDP: the datagram)
//
// A TCP client whose first line is "stream" gets every further line echoed until it closes (the
// e2e tests' long-lived connections); "idle-stream" is the same with TCP keepalive off, so that
// the connection carries nothing while the client does not write.
//
// so a test can tell which backend answered and whether the source was NATed. Build it static
// (CGO_ENABLED=0); the e2e harness starts one per pod network namespace.
//
// Usage: echoserver -name POD [-ports 8080,9090] [-addr IP]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	name := flag.String("name", "", "pod name to report (default: hostname)")
	ports := flag.String("ports", "8080", "comma-separated ports to listen on, TCP and UDP each")
	addr := flag.String("addr", "", "IP address to bind (default: all)")
	flag.Parse()
	if *name == "" {
		*name, _ = os.Hostname()
	}
	log.SetPrefix("echoserver " + *name + ": ")
	log.SetFlags(log.Lmicroseconds)
	for _, ps := range strings.Split(*ports, ",") {
		port, err := strconv.Atoi(strings.TrimSpace(ps))
		if err != nil {
			log.Fatalf("bad port %q", ps)
		}
		hp := net.JoinHostPort(*addr, strconv.Itoa(port))
		tl, err := net.Listen("tcp", hp)
		if err != nil {
			log.Fatal(err)
		}
		uc, err := net.ListenPacket("udp", hp)
		if err != nil {
			log.Fatal(err)
		}
		go serveTCP(tl, *name, port)
		go serveUDP(uc, *name, port)
	}
	log.Printf("listening on %s", *ports)
	select {}
}

func banner(name string, client net.Addr, proto string, port int) string {
	return fmt.Sprintf("pod=%s client=%s proto=%s port=%d\n", name, client, proto, port)
}

func serveTCP(l net.Listener, name string, port int) {
	for {
		c, err := l.Accept()
		if err != nil {
			log.Printf("accept: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			if _, err := c.Write([]byte(banner(name, c.RemoteAddr(), "tcp", port))); err != nil {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			r := bufio.NewReader(c)
			if line, err := r.ReadString('\n'); err == nil || line != "" {
				_, _ = c.Write([]byte(line))
				if line == "stream\n" || line == "idle-stream\n" { // long-lived mode: echo every line until the client closes
					if tc, ok := c.(*net.TCPConn); ok && line == "idle-stream\n" {
						_ = tc.SetKeepAlive(false)
					}
					_ = c.SetReadDeadline(time.Time{})
					for {
						l, err := r.ReadString('\n')
						if err != nil {
							return
						}
						if _, err := c.Write([]byte(l)); err != nil {
							return
						}
					}
				}
			}
		}(c)
	}
}

func serveUDP(c net.PacketConn, name string, port int) {
	buf := make([]byte, 65535)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			log.Printf("udp read: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		reply := append([]byte(banner(name, from, "udp", port)), buf[:n]...)
		_, _ = c.WriteTo(reply, from)
	}
}
