package desired

import (
	"slices"
	"testing"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/proxy/ipvs/internal/fixture"
)

func TestJumpRestoreLine(t *testing.T) {
	j := JumpRules()[0]
	want := `-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`
	if got := j.RestoreLine(); got != want {
		t.Errorf("RestoreLine = %s, want %s", got, want)
	}
	words, err := fixture.SplitRestoreWords(want)
	if err != nil || !slices.Equal(words[2:], j.Args()) {
		t.Errorf("the line does not split back into Args: %q, %v", words, err)
	}
}

func TestWithJumps(t *testing.T) {
	nat := JumpRules()[0]
	filter := JumpRules()[3]
	text := "*filter\n:KUBE-FORWARD - [0:0]\nCOMMIT\n*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j RETURN\nCOMMIT\n"
	for _, tc := range []struct {
		name  string
		text  string
		jumps []JumpRule
		want  string
	}{
		{"none", text, nil, text},
		{"each before its table's COMMIT", text, []JumpRule{nat, filter},
			"*filter\n:KUBE-FORWARD - [0:0]\n" + filter.RestoreLine() + "\nCOMMIT\n" +
				"*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j RETURN\n" + nat.RestoreLine() + "\nCOMMIT\n"},
		{"a table without a block gets one", "*filter\nCOMMIT", []JumpRule{nat},
			"*filter\nCOMMIT\n*nat\n" + nat.RestoreLine() + "\nCOMMIT\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(WithJumps([]byte(tc.text), tc.jumps)); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestMissingJumps(t *testing.T) {
	saved := `*nat
:OUTPUT ACCEPT [0:0]
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -m comment --comment "someone else's rule" -j KUBE-SERVICES
COMMIT
`
	var got []string
	for _, j := range MissingJumps([]byte(saved), TableNAT) {
		got = append(got, j.SourceChain+"->"+j.Chain)
	}
	if want := []string{"PREROUTING->KUBE-SERVICES", "POSTROUTING->KUBE-POSTROUTING"}; !slices.Equal(got, want) {
		t.Errorf("missing = %v, want %v", got, want)
	}
}
