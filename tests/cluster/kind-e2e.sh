#!/usr/bin/env bash
# Run the cluster tests against a kind cluster. Needs Docker, kind and kubectl; it cannot run on
# machines without a Docker engine (where the suite's own test cluster is used instead).
set -euo pipefail
cd "$(dirname "$0")/../.."
name=${KIND_CLUSTER_NAME:-ferry-e2e}
kubeconfig=$(mktemp)
kind create cluster --name "$name" --kubeconfig "$kubeconfig" --wait 120s
trap 'kind delete cluster --name "$name"' EXIT
docker build -t ferry:dev .
kind load docker-image ferry:dev --name "$name"
FERRY_TEST_KUBECONFIG=$kubeconfig .venv/bin/python -m pytest -m cluster "$@"
