// The user-assigned identities: one for the Functions app, one for the training job. User-assigned, so their role
// assignments (granted by the modules that own each scope) exist before the app and the job are created: Key Vault
// references and the registry pull work on first start.

param functionsIdentityName string
param trainingIdentityName string
param location string
param tags object

resource functionsIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: functionsIdentityName
  location: location
  tags: tags
}

resource trainingIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: trainingIdentityName
  location: location
  tags: tags
}

output functionsIdentityName string = functionsIdentity.name
output trainingIdentityName string = trainingIdentity.name
