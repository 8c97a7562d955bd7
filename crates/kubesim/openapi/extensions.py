#!/usr/bin/env python3
"""Writes extensions.json: the x-kubernetes-* extensions (patch strategy and merge key, list and
map types) and the required fields of the real kube-apiserver v1.33.13 OpenAPI (k8s.io/kubernetes api/openapi-spec),
for the definitions kubesim's OpenAPI documents contain. The schemas themselves come from the
k8s-openapi crate (schemars); these extensions are what it does not carry."""
import json, subprocess, sys

PREFIXES = ("io.k8s.api.core.v1.", "io.k8s.api.apps.v1.", "io.k8s.api.policy.v1.",
            "io.k8s.api.coordination.v1.", "io.k8s.api.authorization.v1.",
            "io.k8s.api.autoscaling.v1.", "io.k8s.api.events.v1.",
            "io.k8s.apimachinery.pkg.apis.meta.v1.")
KEEP = ("x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key", "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-unions")

modcache = subprocess.check_output(["go", "env", "GOMODCACHE"], text=True).strip()
spec = json.load(open(f"{modcache}/k8s.io/kubernetes@v1.33.13/api/openapi-spec/swagger.json"))
out = {}
for name, d in sorted(spec["definitions"].items()):
    if not name.startswith(PREFIXES):
        continue
    entry = {}
    top = {k: v for k, v in d.items() if k in KEEP + ("required",)}
    if top:
        entry[""] = top
    for p, s in sorted(d.get("properties", {}).items()):
        ext = {k: v for k, v in s.items() if k in KEEP}
        if ext:
            entry[p] = ext
    if entry:
        out[name] = entry
with open("extensions.json", "w") as f:
    for i, (k, v) in enumerate(out.items()):
        f.write(("{" if i == 0 else ",") + json.dumps(k) + ":" + json.dumps(v, separators=(",", ":"), sort_keys=True) + "\n")
    f.write("}\n")
