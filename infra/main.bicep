// Dialogporten events receiver: everything it needs in one resource group.
// Deploy with `azd up`, or `az deployment group create -g RG -f infra/main.bicep`
// followed by publishing the code (see docs/deploy.md).
targetScope = 'resourceGroup'

@minLength(1)
@maxLength(64)
@description('Name of the environment (e.g. dialogporten-tt02). Seeds the unique suffix of every resource name.')
param environmentName string

@description('Azure region. Flex Consumption must be available there (norwayeast is).')
param location string = resourceGroup().location

@description('Upper bound of instances for the whole app. On Flex Consumption each queue-triggered function scales in its own group of instances (the HTTP functions share one), so the events of many types can start many instances at once: this caps the cost and the load on the storage account. 40 is the lowest value the platform accepts outside a few preview regions, 1000 the highest.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('The Altinn environment whose events this deployment receives: tt02 (test) or prod. It sets both the inbound IP allow list (that environment\'s outbound address only) and ALLOWED_SOURCE_HOSTS.')
@allowed([
  'tt02'
  'prod'
])
param altinnEnvironment string

@description('More addresses (CIDR, e.g. your own 203.0.113.7/32) allowed to call the app, besides Altinn\'s.')
param additionalAllowedIpAddresses array = []

@description('true opens the app to the whole internet (the function key still guards the webhook). Keep false in production.')
param allowAllIps bool = false

@description('Resource URNs whose events are accepted, e.g. urn:altinn:resource:super-simple-service. Empty = all.')
param allowedResources array = []

@description('E-mail address for the "poisoned or parked" alert. Empty = no alert is created.')
param alertEmail string = ''

@description('Days after which claim-check blobs (events too large for a queue message) are deleted.')
@minValue(1)
param claimCheckRetentionDays int = 30

@description('Days a deleted blob or container can be restored.')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int = 7

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Optional object id of an operator (user or group) given read access to tables and blobs and read/replay access to queues. azd fills in the signed-in user.')
param operatorPrincipalId string = ''

@description('Type of operatorPrincipalId. Must match the principal or ARM refuses the role assignment (UnmatchedPrincipalType): the preprovision hook sets ServicePrincipal when azd runs as a service principal (CI).')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('Maskinporten client id for enrichment (handlers fetch dialogs from Dialogporten) and the catch-up timer. Empty = neither, and no Key Vault.')
param maskinportenClientId string = ''

@description('The kid the client\'s public key is registered under at Maskinporten (may be empty when the stored key is a JWK with its own kid).')
param maskinportenKid string = ''

@description('Name of the Key Vault secret holding the client\'s private key (PEM or JWK). You store it after provisioning; the app reads it through a Key Vault reference.')
param maskinportenKeySecretName string = 'maskinporten-private-key'

@description('Resource URNs the catch-up timer polls Altinn\'s events API for (needs maskinportenClientId). Empty = no catch-up.')
param catchUpResources array = []

param tags object = {}

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName, location))
var allTags = union(tags, {
  'azd-env-name': environmentName
})

// Altinn Events' outbound address and event source host per environment (Altinn's
// "subscribe to events" guide). Only the chosen environment's address is admitted.
var altinn = {
  tt02: {
    ipRule: {
      name: 'altinn-tt02'
      ipAddress: '20.100.24.41/32'
    }
    sourceHost: 'platform.tt02.altinn.no'
  }
  prod: {
    ipRule: {
      name: 'altinn-prod'
      ipAddress: '20.100.46.139/32'
    }
    sourceHost: 'platform.altinn.no'
  }
}

var enrichment = !empty(maskinportenClientId)
var vaultName = '${abbrs.keyVaultVaults}${resourceToken}'

var extraIpRules = [
  for (cidr, i) in additionalAllowedIpAddresses: {
    name: 'extra-${i}'
    ipAddress: cidr
  }
]

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${abbrs.managedIdentityUserAssignedIdentities}dp-events-${resourceToken}'
  location: location
  tags: allTags
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: allTags
    claimCheckRetentionDays: claimCheckRetentionDays
    softDeleteRetentionDays: softDeleteRetentionDays
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}dp-events-${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}dp-events-${resourceToken}'
    location: location
    tags: allTags
    retentionInDays: logRetentionDays
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    claimCheckContainerName: storage.outputs.claimCheckContainerName
    appPrincipalId: identity.properties.principalId
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

module keyVault 'app/keyvault.bicep' = if (enrichment) {
  name: 'keyVault'
  params: {
    name: vaultName
    location: location
    tags: allTags
    appPrincipalId: identity.properties.principalId
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module functionApp 'app/function.bicep' = {
  name: 'functionApp'
  params: {
    name: '${abbrs.webSitesFunctions}dp-events-${resourceToken}'
    planName: '${abbrs.webServerFarms}dp-events-${resourceToken}'
    location: location
    tags: allTags
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    allowedIpRules: concat([altinn[altinnEnvironment].ipRule], extraIpRules)
    allowAllIps: allowAllIps
    allowedResources: allowedResources
    allowedSourceHosts: [altinn[altinnEnvironment].sourceHost]
    altinnEnvironment: altinnEnvironment
    maskinportenClientId: maskinportenClientId
    maskinportenKid: maskinportenKid
    // A reference, not the key: the platform resolves it with the app's identity (keyVaultReferenceIdentity).
    maskinportenPrivateKey: enrichment ? '@Microsoft.KeyVault(VaultName=${vaultName};SecretName=${maskinportenKeySecretName})' : ''
    catchUpResources: enrichment ? catchUpResources : []
  }
  // The host starts as soon as the app exists: its storage and telemetry roles, and its
  // right to read the key's secret, must be in place.
  dependsOn: [
    rbac
    keyVault
  ]
}

module alerts 'app/alerts.bicep' = if (!empty(alertEmail)) {
  name: 'alerts'
  params: {
    actionGroupName: '${abbrs.insightsActionGroups}dp-events-${resourceToken}'
    alertRuleName: '${abbrs.insightsScheduledQueryRules}dp-events-poisoned-or-parked-${resourceToken}'
    location: location
    tags: allTags
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    alertEmail: alertEmail
  }
}

// The dashboard: always deployed, and updated in place by every redeploy (its name is
// derived from the resource group and the environment, never random).
module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  params: {
    name: guid(resourceGroup().id, environmentName, 'dialogporten-events-workbook')
    displayName: 'Dialogporten events (${environmentName})'
    location: location
    tags: allTags
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

// azd turns these into environment values (`azd env get-values`). None is a secret:
// the webhook URL is given without its key, which is fetched separately.
output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output ALTINN_ENVIRONMENT string = altinnEnvironment
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostName
output WEBHOOK_URL string = 'https://${functionApp.outputs.defaultHostName}/api/events'
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output APPLICATION_INSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output VAULT_NAME string = enrichment ? vaultName : ''
output LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.logAnalyticsName
output WORKBOOK_ID string = workbook.outputs.id
// The dashboard in the Azure portal (printed by `make verify-deploy`).
output WORKBOOK_URL string = '${environment().portal}/#@/resource${workbook.outputs.id}/workbook'
