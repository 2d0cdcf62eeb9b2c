package e2e

// deploy/'s manifests, rendered by kustomize (the release kubectl v1.37.2 embeds), against the
// lab's kube-apiserver: the apiserver accepts them, refuses them once broken, and the kubeadm
// overlay changes the image of kubeadm's DaemonSet and nothing else. Needs only the apiserver
// (no kube-proxy, no lab network): E2E_RUN='^TestDeployManifests$' hack/e2e.sh.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

const upstreamImage = "registry.k8s.io/kube-proxy:v1.37.2"

var resources = map[string]schema.GroupVersionResource{
	"ServiceAccount":     {Version: "v1", Resource: "serviceaccounts"},
	"ConfigMap":          {Version: "v1", Resource: "configmaps"},
	"ClusterRoleBinding": {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	"DaemonSet":          {Group: "apps", Version: "v1", Resource: "daemonsets"},
}

// render runs `kustomize build` on deploy/<dir>.
func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	out, err := exec.Command(os.Getenv("E2E_KUSTOMIZE"), "build", filepath.Join(os.Getenv("E2E_DEPLOY"), dir)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		t.Fatalf("kustomize build deploy/%s: %v", dir, err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	var objs []*unstructured.Unstructured
	for {
		var o unstructured.Unstructured
		if err := dec.Decode(&o.Object); err == io.EOF {
			return objs
		} else if err != nil {
			t.Fatalf("deploy/%s's output: %v", dir, err)
		}
		if o.Object != nil {
			objs = append(objs, &o)
		}
	}
}

func resourceFor(t *testing.T, dyn dynamic.Interface, o *unstructured.Unstructured) dynamic.ResourceInterface {
	t.Helper()
	gvr, ok := resources[o.GetKind()]
	if !ok {
		t.Fatalf("unexpected kind %s in deploy/", o.GetKind())
	}
	if o.GetNamespace() == "" {
		return dyn.Resource(gvr)
	}
	return dyn.Resource(gvr).Namespace(o.GetNamespace())
}

// apply is `kubectl apply --server-side [--force-conflicts] --field-manager=kube-proxy-ipvs`.
func apply(ctx context.Context, t *testing.T, dyn dynamic.Interface, o *unstructured.Unstructured, force bool, dryRun bool) error {
	t.Helper()
	data, err := o.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	opts := metav1.PatchOptions{FieldManager: "kube-proxy-ipvs", Force: &force, FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = resourceFor(t, dyn, o).Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts)
	return err
}

func TestDeployManifests(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if os.Getenv("E2E_KUSTOMIZE") == "" || os.Getenv("E2E_DEPLOY") == "" {
		t.Skip("E2E_KUSTOMIZE and E2E_DEPLOY not set (hack/e2e.sh sets them)")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// deploy/standalone, as on a cluster without kube-proxy: every object is created. The
	// DaemonSet goes in with upstream's image, as kubeadm's would be, for the overlay below.
	standalone := render(t, "standalone")
	kinds := map[string]bool{}
	var ds *unstructured.Unstructured
	for _, o := range standalone {
		kinds[o.GetKind()] = true
		if o.GetKind() == "DaemonSet" {
			ds = o.DeepCopy()
			containers, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "containers")
			containers[0].(map[string]any)["image"] = upstreamImage
			if err := unstructured.SetNestedSlice(ds.Object, containers, "spec", "template", "spec", "containers"); err != nil {
				t.Fatal(err)
			}
			o = ds
		}
		r := resourceFor(t, dyn, o)
		if err := r.Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		if _, err := r.Create(ctx, o, metav1.CreateOptions{FieldManager: "kubeadm", FieldValidation: "Strict"}); err != nil {
			t.Fatalf("creating deploy/standalone's %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	if len(kinds) != len(resources) {
		t.Fatalf("deploy/standalone rendered %v, want one of each of %v", kinds, resources)
	}

	t.Run("bad edits are refused", func(t *testing.T) {
		// Each refusal must come from the apiserver (a Status) and name what is wrong.
		for name, bad := range map[string]struct {
			edit    func(o map[string]any)
			mention string
		}{
			"hostPath type misspelled": {func(o map[string]any) {
				volumes, _, _ := unstructured.NestedSlice(o, "spec", "template", "spec", "volumes")
				for _, v := range volumes {
					if hp, ok := v.(map[string]any)["hostPath"].(map[string]any); ok {
						hp["type"] = "FileOrCreat"
					}
				}
				_ = unstructured.SetNestedSlice(o, volumes, "spec", "template", "spec", "volumes")
			}, "FileOrCreat"},
			"unknown field": {func(o map[string]any) {
				_ = unstructured.SetNestedField(o, "rr", "spec", "template", "spec", "ipvsScheduler")
			}, "ipvsScheduler"},
			"selector not matching the labels": {func(o map[string]any) {
				_ = unstructured.SetNestedField(o, "other", "spec", "selector", "matchLabels", "k8s-app")
			}, "selector"},
		} {
			o := ds.DeepCopy()
			bad.edit(o.Object)
			err := apply(ctx, t, dyn, o, true, true)
			var status apierrors.APIStatus
			if !errors.As(err, &status) || !strings.Contains(err.Error(), bad.mention) {
				t.Errorf("%s: apply gave %v, want the apiserver to refuse it naming %s", name, err, bad.mention)
			}
		}
	})

	t.Run("the kubeadm overlay changes only the image", func(t *testing.T) {
		before, err := resourceFor(t, dyn, ds).Get(ctx, ds.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		overlay := render(t, "kubeadm")
		if len(overlay) != 1 || overlay[0].GetKind() != "DaemonSet" {
			t.Fatalf("deploy/kubeadm rendered %d objects, want kubeadm's DaemonSet", len(overlay))
		}
		// Without --force-conflicts the image stays kubeadm's: the recipe needs the flag.
		if err := apply(ctx, t, dyn, overlay[0], false, false); !apierrors.IsConflict(err) {
			t.Errorf("apply without force: %v, want a conflict over kubeadm's image", err)
		}
		if err := apply(ctx, t, dyn, overlay[0], true, false); err != nil {
			t.Fatal(err)
		}
		after, err := resourceFor(t, dyn, ds).Get(ctx, ds.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		image := func(o *unstructured.Unstructured) string {
			c, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			return c[0].(map[string]any)["image"].(string)
		}
		if got := image(after); got != "ghcr.io/kube-proxy-ipvs/kube-proxy:v1.37.2-ipvs.1" {
			t.Errorf("image %q after the overlay", got)
		}
		spec := func(o *unstructured.Unstructured) map[string]any {
			s := o.DeepCopy()
			c, _, _ := unstructured.NestedSlice(s.Object, "spec", "template", "spec", "containers")
			c[0].(map[string]any)["image"] = ""
			_ = unstructured.SetNestedSlice(s.Object, c, "spec", "template", "spec", "containers")
			out, _, _ := unstructured.NestedMap(s.Object, "spec")
			return out
		}
		if !reflect.DeepEqual(spec(before), spec(after)) {
			t.Errorf("the overlay changed more than the image:\nbefore %v\nafter  %v", spec(before), spec(after))
		}
	})

	t.Run("the kubeadm settings patch adds the kube-proxy-ipvs ConfigMap and keeps kubeadm's mounts", func(t *testing.T) {
		for _, o := range render(t, "kubeadm-settings") {
			if err := apply(ctx, t, dyn, o, true, false); err != nil {
				t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
		after, err := resourceFor(t, dyn, ds).Get(ctx, ds.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		volumes, _, _ := unstructured.NestedSlice(after.Object, "spec", "template", "spec", "volumes")
		var names []string
		for _, v := range volumes {
			names = append(names, v.(map[string]any)["name"].(string))
		}
		slices.Sort(names)
		if want := []string{"kube-proxy", "kube-proxy-ipvs", "lib-modules", "xtables-lock"}; !slices.Equal(names, want) {
			t.Errorf("volumes %v, want %v", names, want)
		}
		c, _, _ := unstructured.NestedSlice(after.Object, "spec", "template", "spec", "containers")
		command, _, _ := unstructured.NestedStringSlice(c[0].(map[string]any), "command")
		if !slices.Contains(command, "--fork-config=/etc/kube-proxy-ipvs/config.yaml") || !slices.Contains(command, "--hostname-override=$(NODE_NAME)") {
			t.Errorf("command %q", strings.Join(command, " "))
		}
	})
}
