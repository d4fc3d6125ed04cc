#!/bin/sh
# Runs before `azd provision` (and so `azd up`); also step 1 of the az path.
#
# 1. Registers the resource providers Flex Consumption needs. A template
#    deployment does not register them, and Flex Consumption apps need
#    Microsoft.App besides Microsoft.Web: without it the deployment fails.
# 2. Sets AZURE_PRINCIPAL_TYPE from the signed-in principal when it is not set
#    yet. The operator's role assignments name the principal's type, and ARM
#    refuses a mismatch (UnmatchedPrincipalType): a service principal running
#    azd in CI is not a User.
#
# Needs the Azure CLI (az), signed in to the same tenant as azd.
set -eu

if ! command -v az >/dev/null 2>&1; then
  echo "preprovision: the Azure CLI (az) is required: https://learn.microsoft.com/cli/azure/install-azure-cli" >&2
  exit 1
fi

subscription="${AZURE_SUBSCRIPTION_ID:-}"
sub_arg=""
if [ -n "$subscription" ]; then
  sub_arg="--subscription=$subscription"
fi

for namespace in Microsoft.App Microsoft.Web; do
  # shellcheck disable=SC2086  # sub_arg is one word or nothing
  state="$(az provider show --namespace "$namespace" $sub_arg --query registrationState -o tsv)"
  if [ "$state" = "Registered" ]; then
    echo "preprovision: $namespace is registered"
  else
    echo "preprovision: registering $namespace (state: $state); this can take a few minutes"
    # shellcheck disable=SC2086
    az provider register --namespace "$namespace" $sub_arg --wait
  fi
done

if [ -z "${AZURE_PRINCIPAL_TYPE:-}" ]; then
  # shellcheck disable=SC2086
  kind="$(az account show $sub_arg --query user.type -o tsv)"
  case "$kind" in
    servicePrincipal) principal_type=ServicePrincipal ;;
    *) principal_type=User ;;
  esac
  echo "preprovision: the deploying principal is a $kind: AZURE_PRINCIPAL_TYPE=$principal_type"
  if command -v azd >/dev/null 2>&1 && [ -n "${AZURE_ENV_NAME:-}" ]; then
    azd env set AZURE_PRINCIPAL_TYPE "$principal_type"
  fi
fi
