#!/usr/bin/env sh
# Helm post-renderer for the vllm-stack chart: applies kustomization.yaml (beside this file) to the rendered
# manifests. Helm 3:  helm install ... --post-renderer deploy/production-stack/post-render.sh
# Needs kubectl (its built-in kustomize). Manifests come on stdin and go out on stdout.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/kustomization.yaml" "$work/"
cat >"$work/chart.yaml"
kubectl kustomize "$work"
