// Container registry for the training image; the training identity pulls with AcrPull (no admin user).

param registryName string
param location string
param tags object
param registrySku string
param trainingIdentityName string

// Built-in role definition id (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_166: quarantine needs the Premium tier; registrySku defaults to Basic
  // checkov:skip=CKV_AZURE_139: public endpoint by design: no virtual network here; the job pulls with AcrPull, no admin user
  // checkov:skip=CKV_AZURE_163: image scanning is Defender for Containers, a subscription setting outside this template
  name: registryName
  location: location
  tags: tags
  sku: {
    name: registrySku
  }
  properties: {
    adminUserEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

resource trainingIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: trainingIdentityName
}

resource trainingAcrPullRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, trainingIdentity.id, acrPullRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
    principalId: trainingIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

output registryName string = registry.name
// The training job takes the login server from here, so it deploys after the AcrPull role exists.
output registryLoginServer string = registry.properties.loginServer
