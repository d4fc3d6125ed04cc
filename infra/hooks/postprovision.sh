#!/bin/sh
# Runs after `azd provision` (and so before azd publishes the code); also a step
# of the az path.
#
# Waits until the new app's host runs. Role assignments for a new managed
# identity take minutes to reach the storage service; until then the host
# cannot read its storage and the first package upload is refused (403).
# The host status is read through Azure Resource Manager
# (<app id>/hostruntime/admin/host/status), which the app's IP allow list
# does not apply to. The state is "Running" once the identity can reach
# storage.
#
# Needs the Azure CLI (az) and the outputs AZURE_RESOURCE_GROUP and
# FUNCTION_APP_NAME (azd sets them from the deployment; give them yourself on
# the az path). POSTPROVISION_TIMEOUT_SECONDS (default 900) bounds the wait.
set -eu

: "${AZURE_RESOURCE_GROUP:?set AZURE_RESOURCE_GROUP (the resource group of the deployment)}"
: "${FUNCTION_APP_NAME:?set FUNCTION_APP_NAME (the deployment output of that name)}"
timeout="${POSTPROVISION_TIMEOUT_SECONDS:-900}"
interval="${POSTPROVISION_INTERVAL_SECONDS:-15}"

sub_arg=""
if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then
  sub_arg="--subscription=$AZURE_SUBSCRIPTION_ID"
fi

# shellcheck disable=SC2086
app_id="$(az functionapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$FUNCTION_APP_NAME" $sub_arg --query id -o tsv)"
status_url="https://management.azure.com${app_id}/hostruntime/admin/host/status?api-version=2022-03-01"

started="$(date +%s)"
state=""
while :; do
  # shellcheck disable=SC2086
  state="$(az rest --method get --url "$status_url" $sub_arg --query state -o tsv 2>/dev/null || true)"
  elapsed=$(( $(date +%s) - started ))
  if [ "$state" = "Running" ]; then
    echo "postprovision: the host of $FUNCTION_APP_NAME runs (after ${elapsed}s); its identity reaches storage"
    exit 0
  fi
  if [ "$elapsed" -ge "$timeout" ]; then
    echo "postprovision: after ${elapsed}s the host of $FUNCTION_APP_NAME is still '${state:-unreachable}'." >&2
    echo "postprovision: its errors:" >&2
    # shellcheck disable=SC2086
    az rest --method get --url "$status_url" $sub_arg --query errors -o json >&2 || true
    echo "postprovision: see docs/deploy.md, 'When the deployment fails'." >&2
    exit 1
  fi
  echo "postprovision: host state '${state:-no answer yet}' after ${elapsed}s; waiting for the identity's roles to propagate"
  sleep "$interval"
done
