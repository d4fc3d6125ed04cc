// The Flex Consumption plan and the Linux function app that runs the code.
// Storage, telemetry and the deployment package are all reached with the
// user-assigned managed identity; no key or connection string is stored.

param name string
param planName string
param location string
param tags object = {}

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string

@description('Upper bound for scale-out. Each instance polls every queue, so this also bounds storage load and cost.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('Memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Inbound allow list: objects with `name` and `ipAddress` (CIDR).')
param allowedIpRules array

@description('true: anyone on the internet reaches the app (the function key still protects the webhook).')
param allowAllIps bool

@description('Resource URNs whose events are accepted (ALLOWED_RESOURCES). Empty = all.')
param allowedResources array

@description('Event source hosts accepted (ALLOWED_SOURCE_HOSTS). Empty = all.')
param allowedSourceHosts array

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy on Flex Consumption needs always-ready instances that cost at rest; Altinn retries a failed delivery for about 1.5 days
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

var ipSecurityRestrictions = [
  for (rule, i) in allowedIpRules: {
    name: rule.name
    ipAddress: rule.ipAddress
    action: 'Allow'
    priority: 100 + i
  }
]

// Exactly what shared/settings.py declares (tests/infra checks both directions),
// plus the platform's Application Insights settings.
var appSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  ALLOWED_RESOURCES: join(allowedResources, ',')
  ALLOWED_SOURCE_HOSTS: join(allowedSourceHosts, ',')
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222:Altinn Events calls the webhook over the internet; inbound is limited by the IP allow list and the function key
  // checkov:skip=CKV_AZURE_17:Altinn Events presents no client certificate; callers are authenticated by the function key and the IP allow list
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero on demand; always-ready instances would cost at rest and Altinn retries failed deliveries
  // checkov:skip=CKV_AZURE_213:Health check (healthCheckPath) is not supported on Flex Consumption; the platform replaces unhealthy instances itself
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      remoteDebuggingEnabled: false
      http20Enabled: true
      // Set with the site (not as a separate config resource) so that the host's
      // first start already has its identity-based storage connection.
      appSettings: [
        for setting in items(appSettings): {
          name: setting.key
          value: setting.value
        }
      ]
      ipSecurityRestrictions: ipSecurityRestrictions
      ipSecurityRestrictionsDefaultAction: allowAllIps ? 'Allow' : 'Deny'
      // The deployment endpoint (scm) is not IP-restricted so that `azd deploy` and
      // `az functionapp deployment` work from the operator's machine; basic
      // publishing credentials are off below, so it accepts only Entra ID tokens
      // of principals with a role on the app.
      scmIpSecurityRestrictionsUseMain: false
      scmIpSecurityRestrictionsDefaultAction: 'Allow'
    }
  }
}

// Top-level resources with `parent` rather than nested ones: pycep (the parser
// the tests use) keeps only one nested child per resource.

// No FTP and no username/password deployments: only Entra ID.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
