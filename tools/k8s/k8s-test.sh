#!/usr/bin/env bash
# `make k8s-test`: checks the Helm chart and the KServe example with real
# tools, offline. The Makefile builds the tools into $BIN first.
#   1. helm lint --strict, with the least values an install needs and with every option on;
#      the bare defaults must fail (no issuer);
#   2. helm template | kubeconform -strict, against schemas made from the pinned
#      Kubernetes release's OpenAPI document and the CRDs (a misspelled field must fail);
#   3. a strict server-side dry run of every object against kube-apiserver + etcd on loopback.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BIN:?}" "${OUT:?}" "${OPENAPI:?}" "${SERVICEMONITOR_CRD:?}"
chart=deploy/helm/catsdogs
kserve=deploy/kserve/inferenceservice.yaml
crds=("$SERVICEMONITOR_CRD")
if [ -n "${KSERVE_CRD:-}" ] && [ -f "$KSERVE_CRD" ]; then
  crds+=("$KSERVE_CRD"); manifests_kserve=("$kserve")
else
  echo "SKIPPED (no KServe CRD at KSERVE_CRD=${KSERVE_CRD:-}): $kserve is not validated"; manifests_kserve=()
fi
mkdir -p "$OUT"
# Offline and self-contained: no helm repositories or caches from $HOME.
export HELM_CACHE_HOME="$OUT/helm/cache" HELM_CONFIG_HOME="$OUT/helm/config" HELM_DATA_HOME="$OUT/helm/data"

echo "== helm lint --strict"
"$BIN/helm" lint --strict "$chart" -f "$chart/ci/minimal-values.yaml"
"$BIN/helm" lint --strict "$chart" -f "$chart/ci/all-options-values.yaml"
if "$BIN/helm" template catsdogs "$chart" >/dev/null 2>"$OUT/bare.err"; then
  echo "FAIL: the chart rendered without an OIDC issuer" >&2; exit 1
fi
grep -q 'auth.issuer and auth.audience are required' "$OUT/bare.err"
echo "bare defaults refused: $(grep -o 'auth.issuer and auth.audience are required' "$OUT/bare.err")"

echo "== helm template | kubeconform -strict"
"$BIN/helm" template catsdogs "$chart" -f "$chart/ci/minimal-values.yaml" >"$OUT/default.yaml"
"$BIN/helm" template catsdogs "$chart" -f "$chart/ci/all-options-values.yaml" >"$OUT/all-options.yaml"
"$BIN/k8sschema" -out "$OUT/schemas" -openapi "$OPENAPI" "${crds[@]}"
kubeconform() {
  "$BIN/kubeconform" -strict -summary -schema-location "$OUT/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$@"
}
kubeconform "$OUT/default.yaml" "$OUT/all-options.yaml" "${manifests_kserve[@]}"
# The schemas must catch what a typo makes.
sed 's/readinessProbe:/readinesProbe:/' "$OUT/default.yaml" >"$OUT/misspelled.yaml"
if kubeconform "$OUT/misspelled.yaml" >"$OUT/misspelled.out" 2>&1; then
  echo "FAIL: kubeconform accepted a misspelled readinessProbe" >&2; exit 1
fi
echo "misspelled readinesProbe refused: $(grep -o 'additional properties .readinesProbe. not allowed' "$OUT/misspelled.out" | head -1)"

echo "== server-side dry run (kube-apiserver, fieldValidation=Strict)"
crd_flags=(); for c in "${crds[@]}"; do crd_flags+=(-crd "$c"); done
"$BIN/k8sdryrun" -etcd "$BIN/etcd" -apiserver "$BIN/kube-apiserver" "${crd_flags[@]}" \
  "$OUT/default.yaml" "$OUT/all-options.yaml" "${manifests_kserve[@]}"
"$BIN/k8sdryrun" -etcd "$BIN/etcd" -apiserver "$BIN/kube-apiserver" "$OUT/misspelled.yaml" >"$OUT/misspelled-server.out" 2>&1 &&
  { echo "FAIL: the API server accepted a misspelled readinessProbe" >&2; exit 1; }
grep -m1 'readinesProbe' "$OUT/misspelled-server.out" | sed 's/^FAIL /refused as it should be: /' | cut -c1-200
