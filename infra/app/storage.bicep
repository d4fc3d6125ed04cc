// The one storage account: the Functions host's own storage, the deployment
// package, the event queues, the handlers' tables and the claim-check blobs.
// Only Entra ID (the managed identity) can reach its data: no shared keys.

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

param location string
param tags object = {}

@description('Days after which claim-check blobs (events too large for a queue message) are deleted.')
@minValue(1)
param claimCheckRetentionDays int

@description('Days a deleted blob or container can still be restored.')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int

@description('Log Analytics workspace that receives the storage write and delete logs.')
param logAnalyticsId string

@description('Redundancy. Zone-redundant by default: queued events survive the loss of a zone.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_ZRS'

// Generated from shared/events/catalog.py by `python -m devtools.export_catalog`; a test fails on drift.
var appStorage = loadJsonContent('../catalog.json')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:Flex Consumption without VNet integration reaches storage over its public endpoint; shared keys are off, so every request needs an Entra ID token with a data role
  // checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: public endpoint, Entra ID only (allowSharedKeyAccess false, no public blob access)
  // checkov:skip=CKV_AZURE_206:Zone-redundant (ZRS) by default; geo-replication doubles the price and its manual failover would drop unreplicated queue messages anyway (skuName allows GZRS)
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    isLocalUserEnabled: false
    isSftpEnabled: false
    dnsEndpointType: 'Standard'
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // Flex Consumption without VNet integration reaches storage over its public
      // endpoint; every request still needs an Entra ID token with a data role.
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  // Flex Consumption reads the deployment package from here with the managed identity.
  name: appStorage.containers.deployment
  properties: {
    publicAccess: 'None'
  }
}

resource claimCheckContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: appStorage.containers.claimCheck
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queue in appStorage.queues: {
    parent: queueService
    name: queue
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for table in appStorage.tables: {
    parent: tableService
    name: table
  }
]

// Who wrote or deleted what, per service: writes and deletes only. Reads are left
// out on purpose: every instance polls every queue, so read logs would be almost
// all of the volume (and the cost) and say nothing an operator needs.
var storageAuditLogs = [
  {
    category: 'StorageWrite'
    enabled: true
  }
  {
    category: 'StorageDelete'
    enabled: true
  }
]

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'writes-and-deletes'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsId
    logs: storageAuditLogs
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'writes-and-deletes'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsId
    logs: storageAuditLogs
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'writes-and-deletes'
  scope: tableService
  properties: {
    workspaceId: logAnalyticsId
    logs: storageAuditLogs
  }
}

// A claim-check blob is needed only while its queue message (or the poison copy
// waiting for a replay) exists; older ones are litter and may hold personal data.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'delete-old-claim-checks'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${appStorage.containers.claimCheck}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: claimCheckRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    claimCheckContainer
  ]
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output deploymentContainerName string = deploymentContainer.name
output claimCheckContainerName string = claimCheckContainer.name
