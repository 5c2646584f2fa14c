// Command strict decodes Kubernetes manifests into the API's own Go types
// (k8s.io/api, and the Prometheus Operator's for ServiceMonitor) and
// refuses any field those types do not have: the check `kubectl apply
// --validate=strict` makes on a live cluster, without one. Types, formats
// and required fields are checked by validate.mjs beside it.
//
// It is a module of its own so that memtrace itself does not depend on
// the Kubernetes API packages.
//
//	go run . FILE...
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// types maps apiVersion/kind to a new object of the API's type.
var types = map[string]func() any{
	"v1/Namespace":      func() any { return &corev1.Namespace{} },
	"v1/Service":        func() any { return &corev1.Service{} },
	"v1/ServiceAccount": func() any { return &corev1.ServiceAccount{} },
	"apps/v1/DaemonSet": func() any { return &appsv1.DaemonSet{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

func main() {
	failed, checked := 0, 0
	for _, file := range os.Args[1:] {
		data, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed++
			continue
		}
		for _, doc := range docSep.Split(string(data), -1) {
			ok, err := check([]byte(doc))
			switch {
			case err != nil:
				fmt.Fprintf(os.Stderr, "FAIL %s: %v\n", file, err)
				failed++
			case ok:
				checked++
				fmt.Printf("ok   %s\n", file)
			}
		}
	}
	fmt.Printf("%d objects strictly valid, %d failed\n", checked, failed)
	if failed > 0 || checked == 0 {
		os.Exit(1)
	}
}

// check decodes one document; ok is false for an empty one or a
// Kustomization (not an API object).
func check(doc []byte) (ok bool, err error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return false, fmt.Errorf("parsing YAML: %w", err)
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(js, &meta); err != nil || meta.Kind == "" {
		return false, nil // empty document
	}
	if meta.Kind == "Kustomization" {
		return false, nil
	}
	newObj, known := types[meta.APIVersion+"/"+meta.Kind]
	if !known {
		return false, fmt.Errorf("no type for %s %s (add it to strict/main.go)", meta.APIVersion, meta.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(newObj()); err != nil {
		return false, fmt.Errorf("%s: %w", meta.Kind, err)
	}
	return true, nil
}
