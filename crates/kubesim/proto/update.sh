#!/usr/bin/env bash
# Regenerates kubesim's protobuf schema from the Kubernetes Go modules (v0.33.13, the release
# the simulator's behaviour follows): the upstream generated.proto files with comments and blank
# lines removed; zero-kept.txt, the scalar fields whose zero value the real server keeps
# (pointer fields and fields without omitempty); and inline.txt, the embedded message fields whose
# fields are the parent's in JSON; both read by reflection from the Go types.
set -euo pipefail
cd "$(dirname "$0")"
V=v0.33.13
M=$(go env GOMODCACHE)/k8s.io
(cd keepzero && go mod download k8s.io/api k8s.io/apimachinery)
for p in api/core/v1 api/apps/v1 api/policy/v1 api/authorization/v1 api/coordination/v1 \
    api/autoscaling/v1 api/events/v1 apimachinery/pkg/apis/meta/v1 apimachinery/pkg/runtime \
    apimachinery/pkg/runtime/schema apimachinery/pkg/util/intstr apimachinery/pkg/api/resource; do
  mod=${p%%/*}; rest=${p#*/}
  mkdir -p "k8s.io/$p"
  grep -v -E '^\s*//|^\s*$' "$M/$mod@$V/$rest/generated.proto" > "k8s.io/$p/generated.proto"
done
(cd keepzero && go run .) > keepzero.out
grep -v '^#' keepzero.out > zero-kept.txt
# Embedded Go structs (json ",inline"): their fields are the parent's in JSON.
sed -n 's/^# inline //p' keepzero.out > inline.txt
rm keepzero.out
