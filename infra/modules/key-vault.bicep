// Key Vault: the API keys (from secure parameters), the storage connection string (from listKeys) and, when one is
// given, the training job's SMTP password, readable by both identities (Key Vault Secrets User).

param keyVaultName string
param location string
param tags object
param keyVaultPurgeProtection bool

@secure()
param trainingKey string

@secure()
param predictionKey string

// Empty: no training mail login, and no secret for it.
@secure()
param smtpPassword string

param storageAccountName string
param functionsIdentityName string
param trainingIdentityName string

// Built-in role definition id (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource functionsIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: functionsIdentityName
}

resource trainingIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: trainingIdentityName
}

// The connection string is built from the account's key at deployment time (listKeys), never written down.
var storageConnectionString = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    // The API accepts only true or absent for this property.
    enablePurgeProtection: keyVaultPurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
  }
}

resource trainingKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: keyVault
  name: 'seer-training-key'
  properties: {
    value: trainingKey
    contentType: 'text/plain'
  }
}

resource predictionKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: keyVault
  name: 'seer-prediction-key'
  properties: {
    value: predictionKey
    contentType: 'text/plain'
  }
}

resource storageConnectionSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: keyVault
  name: 'seer-storage-connection'
  properties: {
    value: storageConnectionString
    contentType: 'text/plain'
  }
}

// Only when a password is given. The outputs below say whether it exists and where, through this bool: an output that
// read the secure parameter itself would be kept in the deployment history (linter outputs-should-not-contain-secrets).
var storeSmtpLogin = !empty(smtpPassword)

resource smtpPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (storeSmtpLogin) {
  parent: keyVault
  name: 'seer-smtp-password'
  properties: {
    value: smtpPassword
    contentType: 'text/plain'
  }
}

resource functionsKeyVaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, functionsIdentity.id, keyVaultSecretsUserRoleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: functionsIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource trainingKeyVaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, trainingIdentity.id, keyVaultSecretsUserRoleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: trainingIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

output keyVaultName string = keyVault.name

// Versionless secret URIs: a rotated secret is picked up without redeploying. Modules that read them deploy after
// this whole module, so the identities' Key Vault roles exist by then.
output trainingKeyUri string = trainingKeySecret.properties.secretUri
output predictionKeyUri string = predictionKeySecret.properties.secretUri
output storageConnectionUri string = storageConnectionSecret.properties.secretUri
// The training job's SMTP login: whether there is one, and its secret's URI (empty when there is none).
output smtpLogin bool = storeSmtpLogin
output smtpLoginUri string = storeSmtpLogin ? smtpPasswordSecret.properties.secretUri : ''
