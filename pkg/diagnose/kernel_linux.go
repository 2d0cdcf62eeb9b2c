//go:build linux

package diagnose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	utilexec "k8s.io/utils/exec"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

// Kernel reads the kernel of the calling thread's network namespace. Read-only: unlike the
// proxier's IPVS adapter at start, it never loads ip_vs.
type Kernel struct{}

// NewKernelReader returns the Linux KernelReader.
func NewKernelReader() KernelReader { return Kernel{} }

func (Kernel) Release() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

func (Kernel) Links() ([]Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	var out []Link
	for _, nl := range links {
		attrs := nl.Attrs()
		l := Link{Name: attrs.Name, Kind: nl.Type(), Up: attrs.Flags&unix.IFF_UP != 0}
		if vx, ok := nl.(*netlink.Vxlan); ok {
			l.VXLANPort = uint16(vx.Port)
		}
		addrs, err := netlink.AddrList(nl, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("listing addresses of %s: %w", attrs.Name, err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				l.Addrs = append(l.Addrs, ip.Unmap())
			}
		}
		if on, err := txChecksum(attrs.Name); err == nil {
			l.TxChecksum = &on
		}
		out = append(out, l)
	}
	return out, nil
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct{ cmd, data uint32 }

// ifreqData is struct ifreq with ifr_data set, as SIOCETHTOOL takes it.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// txChecksum reads the tx-checksumming feature with the legacy ETHTOOL_GTXCSUM, which every
// kernel answers without privileges (the kernel reports any NETIF_F_CSUM_MASK bit: what
// "ethtool -k" shows as tx-checksumming).
func txChecksum(name string) (bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	v := ethtoolValue{cmd: unix.ETHTOOL_GTXCSUM}
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], name)
	ifr.data = unsafe.Pointer(&v)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return false, errno
	}
	return v.data != 0, nil
}

func (Kernel) Gateways() ([]netip.Addr, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	var out []netip.Addr
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			out = append(out, gw.Unmap())
		}
	}
	return out, nil
}

func (Kernel) Sysctl(key string) (string, bool, error) {
	b, err := os.ReadFile("/proc/sys/" + key)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return strings.TrimSpace(string(b)), true, nil
}

func (Kernel) IPTablesSave(family, table string) (string, error) {
	bin := "iptables-save"
	if family == "IPv6" {
		bin = "ip6tables-save"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-t", table)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s -t %s: %w: %s", bin, table, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (Kernel) VirtualServers() ([]kipvs.VirtualServer, error) {
	// kipvs.NewNetlink loads ip_vs when it is missing; diagnose changes nothing.
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		return nil, fmt.Errorf("ip_vs is not loaded (/proc/net/ip_vs: %w); diagnose does not load it", err)
	}
	h, err := kipvs.NewNetlink()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return h.ListVirtualServers()
}

func (Kernel) IPSets(names ...string) ([]ipset.Content, error) {
	return ipset.NewKernel(utilexec.New()).List(names...)
}

func (Kernel) MartianLog() ([]string, error) {
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_SIZE_BUFFER, nil)
	if err != nil {
		return nil, fmt.Errorf("kernel log size: %w", err)
	}
	buf := make([]byte, n)
	if n, err = unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf); err != nil {
		return nil, fmt.Errorf("reading the kernel log: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		if strings.Contains(line, "martian") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out, nil
}
