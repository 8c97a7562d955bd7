package main

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var seen = map[reflect.Type]bool{}
var keep []string
var renamed []string
var inline []string

func walk(t reflect.Type) {
	for t.Kind() == reflect.Ptr || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || !strings.HasPrefix(t.PkgPath(), "k8s.io/") {
		return
	}
	seen[t] = true
	msg := strings.ReplaceAll(t.PkgPath(), "/", ".") + "." + t.Name()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		walk(f.Type)
		ptag := f.Tag.Get("protobuf")
		if ptag == "" {
			continue
		}
		pname := ""
		for _, p := range strings.Split(ptag, ",") {
			if strings.HasPrefix(p, "name=") {
				pname = p[5:]
			}
		}
		if pname == "" {
			pname = strings.ToLower(f.Name[:1]) + f.Name[1:]
		}
		jtag := strings.Split(f.Tag.Get("json"), ",")
		if jtag[0] == "" && strings.Contains(f.Tag.Get("json"), "inline") {
			inline = append(inline, msg+"."+pname)
		}
		if jtag[0] != pname && jtag[0] != "" {
			renamed = append(renamed, fmt.Sprintf("%s.%s %s", msg, pname, jtag[0]))
		}
		ft := f.Type
		ptr := ft.Kind() == reflect.Ptr
		if ptr {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Bool, reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32, reflect.Uint64, reflect.Float64, reflect.String:
		default:
			continue
		}
		omitempty := strings.Contains(f.Tag.Get("json"), "omitempty")
		if ptr || !omitempty {
			keep = append(keep, msg+"."+pname)
		}
	}
}

func main() {
	for _, o := range []any{
		corev1.Pod{}, corev1.PodList{}, corev1.Node{}, corev1.NodeList{}, corev1.Namespace{}, corev1.NamespaceList{}, corev1.Event{}, corev1.EventList{},
		appsv1.Deployment{}, appsv1.DeploymentList{}, appsv1.ReplicaSet{}, appsv1.ReplicaSetList{}, appsv1.StatefulSet{}, appsv1.StatefulSetList{}, appsv1.DaemonSet{}, appsv1.DaemonSetList{},
		policyv1.PodDisruptionBudget{}, policyv1.PodDisruptionBudgetList{}, policyv1.Eviction{},
		authzv1.SelfSubjectAccessReview{}, authzv1.SubjectAccessReview{}, autoscalingv1.Scale{}, coordv1.Lease{}, coordv1.LeaseList{}, eventsv1.Event{}, eventsv1.EventList{},
		metav1.DeleteOptions{}, metav1.Status{}, metav1.CreateOptions{}, metav1.UpdateOptions{}, metav1.PatchOptions{},
	} {
		walk(reflect.TypeOf(o))
	}
	sort.Strings(keep)
	for _, k := range keep {
		fmt.Println(k)
	}
	for _, r := range renamed {
		fmt.Println("# renamed", r)
	}
	sort.Strings(inline)
	for _, r := range inline {
		fmt.Println("# inline", r)
	}
}
