// Command iptables-wrapper picks the iptables backend (legacy or nft) that the node already
// uses and runs the requested iptables command with it. The image links iptables,
// iptables-save, iptables-restore, ip6tables, ip6tables-save and ip6tables-restore to it; on
// the first call it decides (Detect), points those six names at xtables-legacy-multi or
// xtables-nft-multi beside it, and executes the command, so later calls go to the backend
// directly. Its behaviour follows kubernetes-sigs/iptables-wrappers, which upstream's
// kube-proxy image uses; this is this project's own implementation, static, for an image
// without a shell.
//
// Run as iptables-wrapper itself: `detect` prints the backend it would choose and why,
// without changing anything; anything else prints the usage.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// managed are the names the wrapper stands in for until the first call decides.
var managed = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

const usage = `iptables-wrapper: runs iptables with the backend (legacy or nft) this node already uses.

Linked as iptables, iptables-save, iptables-restore, ip6tables, ip6tables-save or
ip6tables-restore: on the first call it chooses the backend (kubelet's KUBE-IPTABLES-HINT or
KUBE-KUBELET-CANARY chain in nft, then in legacy; else the backend with more rules; else nft),
points those names at xtables-<backend>-multi and runs the command.

Usage:
  iptables-wrapper detect   print the backend it would choose and why; change nothing
`

func main() {
	name := filepath.Base(os.Args[0])
	dir, err := ownDir()
	if err != nil {
		fatal("cannot find its own directory: %v", err)
	}
	if !isManaged(name) {
		if len(os.Args) == 2 && os.Args[1] == "detect" {
			mode, why := Detect(saver(dir))
			fmt.Printf("%s (%s)\n", mode, why)
			return
		}
		fmt.Print(usage)
		if len(os.Args) == 2 && (os.Args[1] == "--help" || os.Args[1] == "-h" || os.Args[1] == "help") {
			return
		}
		os.Exit(2)
	}
	mode, _ := Detect(saver(dir))
	multi := "xtables-" + string(mode) + "-multi"
	// Best effort, as upstream: on a read-only root the names stay on the wrapper and every
	// call decides again. Nothing is printed: kube-proxy reads some commands' combined output.
	_ = relink(dir, multi)
	argv := append([]string{name}, os.Args[1:]...)
	if err := syscall.Exec(filepath.Join(dir, multi), argv, os.Environ()); err != nil {
		fatal("exec %s: %v", filepath.Join(dir, multi), err)
	}
}

// ownDir is the directory the wrapper's binary is in: from /proc/self/exe, or where there is no
// /proc (a bare chroot), from argv[0] as the shell or PATH found it.
func ownDir() (string, error) {
	if exe, err := os.Executable(); err == nil {
		return filepath.Dir(exe), nil
	}
	p := os.Args[0]
	if !strings.Contains(p, "/") {
		var err error
		if p, err = exec.LookPath(p); err != nil {
			return "", err
		}
	}
	p, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	return filepath.Dir(p), nil
}

func isManaged(name string) bool {
	for _, m := range managed {
		if name == m {
			return true
		}
	}
	return false
}

// saver runs the backends' save commands from dir. A failing command (the backend's kernel
// support missing, say) yields what it printed, usually nothing.
func saver(dir string) Saver {
	return func(mode Mode, ipv6, mangle bool) []byte {
		name := "iptables-save"
		if ipv6 {
			name = "ip6tables-save"
		}
		cmd := &exec.Cmd{Path: filepath.Join(dir, "xtables-"+string(mode)+"-multi"), Args: []string{name}}
		if mangle {
			cmd.Args = append(cmd.Args, "-t", "mangle")
		}
		var out bytes.Buffer
		// No nil stream: exec would open /dev/null, which a bare chroot lacks.
		cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(nil), &out, io.Discard
		_ = cmd.Run()
		return out.Bytes()
	}
}

// relink points every managed name in dir at target (a name in dir), each replaced atomically
// (a new link renamed over the old), so a concurrent call sees either the wrapper or the backend.
func relink(dir, target string) error {
	for _, name := range managed {
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d", name, os.Getpid()))
		_ = os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			_ = os.Remove(tmp)
			return err
		}
	}
	return nil
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "iptables-wrapper: "+format+"\n", args...)
	os.Exit(1)
}
