package desired

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// TestDecideLBBinding lists the rules one by one, then checks every combination of inputs
// against the precedence the issue states.
func TestDecideLBBinding(t *testing.T) {
	vip, proxyMode := ptr.To(v1.LoadBalancerIPModeVIP), ptr.To(v1.LoadBalancerIPModeProxy)
	cases := []struct {
		name string
		in   LBBindingInput
		want LBBindingDecision
	}{
		{"nothing set, default on: upstream binds", LBBindingInput{Default: true}, LBBindingDecision{Bind: true, Reason: LBBindingByDefault}},
		{"nothing set, default off", LBBindingInput{}, LBBindingDecision{Bind: false, Reason: LBBindingByDefault}},
		{"ipMode VIP follows the default (on)", LBBindingInput{IPMode: vip, Default: true}, LBBindingDecision{Bind: true, Reason: LBBindingByDefault}},
		{"ipMode VIP follows the default (off)", LBBindingInput{IPMode: vip}, LBBindingDecision{Bind: false, Reason: LBBindingByDefault}},
		{"ipMode Proxy is not bound even with default on", LBBindingInput{IPMode: proxyMode, Default: true}, LBBindingDecision{Bind: false, Reason: LBBindingByIPMode}},
		{"unknown ipMode is not bound, as upstream", LBBindingInput{IPMode: ptr.To(v1.LoadBalancerIPMode("Other")), Default: true}, LBBindingDecision{Bind: false, Reason: LBBindingByIPMode}},
		{"annotation true binds ipMode Proxy", LBBindingInput{Annotation: ptr.To("true"), IPMode: proxyMode}, LBBindingDecision{Bind: true, Reason: LBBindingByAnnotation}},
		{"annotation true beats default off", LBBindingInput{Annotation: ptr.To("true")}, LBBindingDecision{Bind: true, Reason: LBBindingByAnnotation}},
		{"annotation false beats default on", LBBindingInput{Annotation: ptr.To("false"), IPMode: vip, Default: true}, LBBindingDecision{Bind: false, Reason: LBBindingByAnnotation}},
		{"annotation false beats TKE true", LBBindingInput{Annotation: ptr.To("false"), TKEPreventLoopback: ptr.To("true"), Default: true}, LBBindingDecision{Bind: false, Reason: LBBindingByAnnotation}},
		{"TKE true binds with default off", LBBindingInput{TKEPreventLoopback: ptr.To("true")}, LBBindingDecision{Bind: true, Reason: LBBindingByTKEAnnotation}},
		{"TKE true binds ipMode Proxy", LBBindingInput{TKEPreventLoopback: ptr.To("true"), IPMode: proxyMode}, LBBindingDecision{Bind: true, Reason: LBBindingByTKEAnnotation}},
		{"TKE false says nothing", LBBindingInput{TKEPreventLoopback: ptr.To("false")}, LBBindingDecision{Bind: false, Reason: LBBindingByDefault}},
		{"TKE other value says nothing", LBBindingInput{TKEPreventLoopback: ptr.To("yes"), Default: true}, LBBindingDecision{Bind: true, Reason: LBBindingByDefault}},
		{"invalid annotation: default applies", LBBindingInput{Annotation: ptr.To("yes"), Default: true}, LBBindingDecision{Bind: true, Reason: LBBindingByDefault, InvalidAnnotation: true}},
		{"invalid annotation: ipMode applies", LBBindingInput{Annotation: ptr.To("True"), IPMode: proxyMode, Default: true}, LBBindingDecision{Bind: false, Reason: LBBindingByIPMode, InvalidAnnotation: true}},
		{"invalid annotation: TKE applies", LBBindingInput{Annotation: ptr.To("1"), TKEPreventLoopback: ptr.To("true")}, LBBindingDecision{Bind: true, Reason: LBBindingByTKEAnnotation, InvalidAnnotation: true}},
		{"empty annotation is invalid", LBBindingInput{Annotation: ptr.To("")}, LBBindingDecision{Bind: false, Reason: LBBindingByDefault, InvalidAnnotation: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := DecideLBBinding(c.in); got != c.want {
				t.Errorf("DecideLBBinding(%s) = %+v, want %+v", describe(c.in), got, c.want)
			}
		})
	}

	// Every combination: the precedence, stated rule by rule.
	annotations := []*string{nil, ptr.To("true"), ptr.To("false"), ptr.To("bogus"), ptr.To("")}
	tkes := []*string{nil, ptr.To("true"), ptr.To("false")}
	modes := []*v1.LoadBalancerIPMode{nil, vip, proxyMode}
	n := 0
	for _, ann := range annotations {
		for _, tke := range tkes {
			for _, mode := range modes {
				for _, def := range []bool{true, false} {
					n++
					in := LBBindingInput{Annotation: ann, TKEPreventLoopback: tke, IPMode: mode, Default: def}
					got := DecideLBBinding(in)
					valid := ann != nil && (*ann == "true" || *ann == "false")
					if got.InvalidAnnotation != (ann != nil && !valid) {
						t.Errorf("%s: InvalidAnnotation = %v", describe(in), got.InvalidAnnotation)
					}
					var want LBBindingDecision
					switch {
					case valid:
						want = LBBindingDecision{Bind: *ann == "true", Reason: LBBindingByAnnotation}
					case tke != nil && *tke == "true":
						want = LBBindingDecision{Bind: true, Reason: LBBindingByTKEAnnotation}
					case mode != nil && *mode == v1.LoadBalancerIPModeProxy:
						want = LBBindingDecision{Bind: false, Reason: LBBindingByIPMode}
					default:
						want = LBBindingDecision{Bind: def, Reason: LBBindingByDefault}
					}
					want.InvalidAnnotation = got.InvalidAnnotation
					if got != want {
						t.Errorf("%s: got %+v, want %+v", describe(in), got, want)
					}
				}
			}
		}
	}
	if n != 90 {
		t.Fatalf("%d combinations checked, want 90", n)
	}
}

func describe(in LBBindingInput) string {
	s := func(p *string) string {
		if p == nil {
			return "<absent>"
		}
		return fmt.Sprintf("%q", *p)
	}
	mode := "<unset>"
	if in.IPMode != nil {
		mode = string(*in.IPMode)
	}
	return fmt.Sprintf("annotation=%s tke=%s ipMode=%s default=%v", s(in.Annotation), s(in.TKEPreventLoopback), mode, in.Default)
}
