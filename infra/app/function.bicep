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

// Endpoints come in as parameters (not from an `existing` storage account) because
// a module's parameters are known when the module's deployment starts.
@description('Blob endpoint of the storage account, e.g. https://st123.blob.core.windows.net/')
param storageBlobEndpoint string
@description('Queue endpoint of the storage account.')
param storageQueueEndpoint string
@description('Table endpoint of the storage account.')
param storageTableEndpoint string
param deploymentContainerName string
param applicationInsightsName string

@description('Log Analytics workspace that receives the app\'s own logs (FunctionAppLogs).')
param logAnalyticsId string

@description('Upper bound of instances for the whole app. Each queue function scales in its own group of instances (HTTP functions share one); 40 is the platform\'s lowest accepted value in most regions.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('Largest request body the host accepts, in bytes: just above the webhook\'s own 1 MiB limit (shared/intake/plan.py MAX_BODY_BYTES) plus room for headers, so that the host refuses a larger body before buffering it.')
param requestBodySizeLimitBytes int = 1100000

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

@description('tt02 or prod (ALTINN_ENVIRONMENT): the Maskinporten, Dialogporten and Events bases.')
param altinnEnvironment string

@description('Maskinporten client id (MASKINPORTEN_CLIENT_ID). Empty = no enrichment, no catch-up.')
param maskinportenClientId string = ''

@description('The kid of the client\'s key (MASKINPORTEN_KID).')
param maskinportenKid string = ''

@description('A Key Vault reference to the private key (MASKINPORTEN_KEY), never the key itself.')
param maskinportenPrivateKey string = ''

@description('Resource URNs the catch-up timer polls (CATCHUP_RESOURCES). Empty = no catch-up.')
param catchUpResources array = []

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

// App settings are set with the site (not as a separate config resource) so that
// the host's first start already has its identity-based storage connection. They
// are exactly what shared/settings.py declares (tests/infra checks both
// directions), plus the settings the platform itself reads.
resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222:Altinn Events calls the webhook over the internet; inbound is limited by the IP allow list and the function key
  // checkov:skip=CKV_AZURE_17:Altinn Events presents no client certificate; callers are authenticated by the function key and the IP allow list
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero on demand; always-ready instances would cost at rest and Altinn retries failed deliveries
  // checkov:skip=CKV_AZURE_213:Health check (healthCheckPath) is not supported on Flex Consumption; the platform replaces unhealthy instances itself
  // checkov:skip=CKV_AZURE_78:Flex Consumption has no FTP at all and rejects siteConfig.ftpsState (Flex deprecations table); basic publishing credentials are off below
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
          value: '${storageBlobEndpoint}${deploymentContainerName}'
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
      remoteDebuggingEnabled: false
      http20Enabled: true
      // A literal list: a for-expression must be computable at deployment start (BCP178).
      appSettings: [
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storageBlobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storageQueueEndpoint
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storageTableEndpoint
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        {
          name: 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT'
          value: string(requestBodySizeLimitBytes)
        }
        {
          name: 'ALLOWED_RESOURCES'
          value: join(allowedResources, ',')
        }
        {
          name: 'ALLOWED_SOURCE_HOSTS'
          value: join(allowedSourceHosts, ',')
        }
        {
          name: 'ALTINN_ENVIRONMENT'
          value: altinnEnvironment
        }
        {
          name: 'MASKINPORTEN_CLIENT_ID'
          value: maskinportenClientId
        }
        {
          name: 'MASKINPORTEN_KID'
          value: maskinportenKid
        }
        {
          name: 'MASKINPORTEN_KEY'
          value: maskinportenPrivateKey
        }
        {
          name: 'CATCHUP_RESOURCES'
          value: join(catchUpResources, ',')
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

// The app's own logs (the host's and the functions') go to the workspace too, so
// they outlive Application Insights' sampling and can be queried with the rest.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: functionApp
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        category: 'FunctionAppLogs'
        enabled: true
      }
    ]
  }
}

output name string = functionApp.name
output id string = functionApp.id
output defaultHostName string = functionApp.properties.defaultHostName
