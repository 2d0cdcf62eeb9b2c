package ipset

import (
	"fmt"
	"strings"
)

// Create parameters upstream kube-proxy v1.37 uses, so that a set it created is adopted as is:
// `create -exist` succeeds only when type, family, maxelem, range and extensions match (hashsize
// may differ). No `comment` extension: upstream puts its comments in iptables rules, not in sets.
const (
	hashSize = 1024
	maxElem  = 65536
)

// maxNameLen is the kernel's IPSET_MAXNAMELEN minus the terminating NUL.
const maxNameLen = 31

// RenderRestore renders ops as an `ipset restore` script, one line per op. It refuses names and
// entries that would break the line format.
func RenderRestore(ops []Op) (string, error) {
	var b strings.Builder
	for i, op := range ops {
		if err := checkWord("set name", op.Set.Name); err != nil {
			return "", fmt.Errorf("op %d: %w", i, err)
		}
		if len(op.Set.Name) > maxNameLen {
			return "", fmt.Errorf("op %d: set name %q longer than %d", i, op.Set.Name, maxNameLen)
		}
		switch op.Kind {
		case Create:
			line, err := createLine(op.Set)
			if err != nil {
				return "", fmt.Errorf("op %d: %w", i, err)
			}
			b.WriteString(line)
		case Add, Del:
			if err := checkWord("entry", op.Entry); err != nil {
				return "", fmt.Errorf("op %d: %w", i, err)
			}
			verb := "add"
			if op.Kind == Del {
				verb = "del"
			}
			fmt.Fprintf(&b, "%s %s %s", verb, op.Set.Name, op.Entry)
		case Flush:
			fmt.Fprintf(&b, "flush %s", op.Set.Name)
		case Destroy:
			fmt.Fprintf(&b, "destroy %s", op.Set.Name)
		default:
			return "", fmt.Errorf("op %d: unknown kind %d", i, op.Kind)
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

func createLine(s Set) (string, error) {
	s = AsListed(s)
	switch s.Type {
	case BitmapPort:
		if _, _, err := parseRange(s.Range); err != nil {
			return "", err
		}
		return fmt.Sprintf("create %s %s range %s", s.Name, s.Type, s.Range), nil
	case HashIP, HashIPPort, HashIPPortIP, HashIPPortNet, HashNet:
		if s.Family != FamilyInet && s.Family != FamilyInet6 {
			return "", fmt.Errorf("set %s: unsupported family %q", s.Name, s.Family)
		}
		return fmt.Sprintf("create %s %s family %s hashsize %d maxelem %d", s.Name, s.Type, s.Family, hashSize, maxElem), nil
	}
	return "", fmt.Errorf("set %s: unsupported type %q", s.Name, s.Type)
}

// checkWord accepts printable ASCII without spaces or quotes, not starting with '-'. The ipset
// tool splits a restore line on ASCII white space and reads each word as a C string, so a NUL
// would cut the word short and the rest of the line would be misread; ParseSave also splits on
// Unicode spaces. ipset takes a word starting with '-' anywhere on the line as an option
// (`-exist`, `-file F`), not as a name or entry. Names and entries the proxier writes are ASCII.
func checkWord(what, s string) error {
	if s == "" || s[0] == '-' {
		return fmt.Errorf("invalid %s %q", what, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\'' {
			return fmt.Errorf("invalid %s %q", what, s)
		}
	}
	return nil
}
