// Key Vault: the API keys (from secure parameters) and, when one is given, the training job's SMTP password,
// readable by both identities (Key Vault Secrets User). Storage holds no secret: both identities reach it with
// Entra ID. Audit logs and metrics go to Log Analytics.

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

param functionsIdentityName string
param trainingIdentityName string
param logAnalyticsName string

// Built-in role definition id (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource functionsIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: functionsIdentityName
}

resource trainingIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: trainingIdentityName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: public endpoint with RBAC by design: no virtual network here (infra/README.md, Hardening not done here)
  // checkov:skip=CKV_AZURE_189: public endpoint with RBAC by design: no virtual network here (infra/README.md, Hardening not done here)
  // checkov:skip=CKV_AZURE_110: purge protection is on by default (keyVaultPurgeProtection = true); checkov does not evaluate the parameter
  // checkov:skip=CKV_AZURE_42: soft delete is on and purge protection on by default (keyVaultPurgeProtection = true); checkov does not evaluate the parameter
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
  // checkov:skip=CKV_AZURE_41: an API key has no natural expiry: rotate it by redeploying with a new trainingKey
  parent: keyVault
  name: 'seer-training-key'
  properties: {
    value: trainingKey
    contentType: 'text/plain'
  }
}

resource predictionKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: an API key has no natural expiry: rotate it by redeploying with a new predictionKey
  parent: keyVault
  name: 'seer-prediction-key'
  properties: {
    value: predictionKey
    contentType: 'text/plain'
  }
}

// Only when a password is given. The outputs below say whether it exists and where, through this bool: an output that
// read the secure parameter itself would be kept in the deployment history (linter outputs-should-not-contain-secrets).
var storeSmtpLogin = !empty(smtpPassword)

resource smtpPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (storeSmtpLogin) {
  // checkov:skip=CKV_AZURE_41: the SMTP password expires when its mail provider says so: rotate it by redeploying with a new smtpPassword
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional resource
  parent: keyVault
  name: 'seer-smtp-password'
  properties: {
    value: smtpPassword
    contentType: 'text/plain'
  }
}

// Who read which secret, and when (AuditEvent), plus the vault's metrics.
resource keyVaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: keyVault
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
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
// The training job's SMTP login: whether there is one, and its secret's URI (empty when there is none).
output smtpLogin bool = storeSmtpLogin
output smtpLoginUri string = storeSmtpLogin ? smtpPasswordSecret.properties.secretUri : ''
