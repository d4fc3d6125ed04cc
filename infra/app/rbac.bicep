// What the app's managed identity may do, and nothing more: data-plane roles on
// its own storage account and the right to publish telemetry to its own
// Application Insights. Names are guid()s of scope, principal and role, so a
// re-deployment finds the same assignments instead of creating duplicates.

param storageAccountName string
param applicationInsightsName string

@description('The claim-check container: the only blobs an operator may read.')
param claimCheckContainerName string

@description('Principal (object) id of the function app\'s user-assigned managed identity.')
param appPrincipalId string

@description('Optional: object id of an operator (user or group) who may read and replay queues and read tables in the portal. Empty = none.')
param operatorPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

// Built-in role definition ids (identical in every Azure tenant).
var roles = {
  // Host storage (keys, leases, the deployment package) and claim-check blobs.
  // The Functions host's identity-based AzureWebJobsStorage requires Owner, not Contributor.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Queue triggers peek/delete, the webhook enqueues, the host moves messages to -poison queues.
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Idempotency claims and dialog state.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Entra ID-authenticated telemetry to Application Insights (local auth is off).
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6'
}

var storageRolesForApp = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

// An operator looks at (and replays) poison queues and reads state, but does not
// write the app's tables or blobs. Blob reading is scoped to the claim-check
// container below: the account also holds the host's keys (azure-webjobs-secrets)
// and the deployment package, which are none of the operator's business.
var storageRolesForOperator = [
  roles.storageQueueDataContributor
  roles.storageTableDataReader
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource claimCheckContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${storageAccountName}/default/${claimCheckContainerName}'
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource appStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in storageRolesForApp: {
    name: guid(storage.id, appPrincipalId, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource operatorStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in (empty(operatorPrincipalId) ? [] : storageRolesForOperator): {
    name: guid(storage.id, operatorPrincipalId, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: operatorPrincipalId
      principalType: operatorPrincipalType
    }
  }
]

resource operatorClaimCheckReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(claimCheckContainer.id, operatorPrincipalId, roles.storageBlobDataReader)
  scope: claimCheckContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}
