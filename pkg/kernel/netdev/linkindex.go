//go:build linux

package netdev

import (
	"errors"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// linkIndexes remembers the index of the links addresses are bound to. Binding the addresses
// of ten thousand Services otherwise costs a link lookup per address, as many round trips as
// the bindings themselves. A cached index is only used to bind and unbind; the kernel answers
// ENODEV when the link is gone, and the caller then looks it up again (an index is not reused
// soon: the kernel allocates them cyclically). It belongs to one network namespace, as the
// Netlink that holds it.
type linkIndexes struct {
	mu sync.Mutex
	m  map[string]int
}

// lookup returns the link, from the cache when it can; cached says which.
func (c *linkIndexes) lookup(name string) (l netlink.Link, cached bool, err error) {
	if c != nil {
		c.mu.Lock()
		idx, ok := c.m[name]
		c.mu.Unlock()
		if ok {
			return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name, Index: idx}}, true, nil
		}
	}
	l, err = linkByName(name)
	if err == nil {
		c.remember(name, l.Attrs().Index)
	}
	return l, false, err
}

func (c *linkIndexes) remember(name string, idx int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[name] = idx
}

func (c *linkIndexes) forget(name string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
}

// withLink runs op on the named link; if a cached index turns out stale (ENODEV), it looks
// the link up again and runs op once more.
func (c *linkIndexes) withLink(name string, op func(netlink.Link) error) error {
	l, cached, err := c.lookup(name)
	if err != nil {
		return err
	}
	err = op(l)
	if cached && errors.Is(err, unix.ENODEV) {
		c.forget(name)
		if l, _, err = c.lookup(name); err != nil {
			return err
		}
		err = op(l)
	}
	return err
}
