// Optional Key Vault for the Maskinporten private key (deployed only when
// maskinportenClientId is set). RBAC mode, no access policies: the app's
// identity gets "Key Vault Secrets User" (read secret values) on this vault
// only, and nothing else. The secret itself is never in a template, a
// parameter or an output: the operator stores it with
// `az keyvault secret set --vault-name <name> --name <secretName> --file key.pem`.

param name string
param location string
param tags object = {}

@description('Principal (object) id of the function app\'s user-assigned managed identity.')
param appPrincipalId string

@description('Log Analytics workspace that receives the vault\'s audit log (every secret read).')
param logAnalyticsId string

@description('Days a deleted vault or secret can be recovered (7-90).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionDays int = 90

// Built-in role "Key Vault Secrets User": read secret contents (identical in every tenant).
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:Flex Consumption without a VNet resolves Key Vault references from shared outbound addresses, which no firewall rule can name; access is by Entra ID role only
  // checkov:skip=CKV_AZURE_189:public network access stays on for the reason of CKV_AZURE_109 (no VNet, so no private endpoint either); reads need the Secrets User role
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    accessPolicies: []
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionDays
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource auditLog 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: vault
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

// Names only: nothing secret leaves the deployment.
output name string = vault.name
