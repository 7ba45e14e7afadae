// The Functions app: Elastic Premium on Linux (see infra/README.md for why not Flex Consumption), its plan and its
// app settings.

param functionAppName string
param functionsPlanName string
param location string
param tags object
param functionsPlanSku string
param functionsMinimumInstances int
param functionsMaximumInstances int
param functionsIdentityName string
param storageAccountName string
param appInsightsName string

// Versionless Key Vault URIs of the secrets behind the app's Key Vault references.
param trainingKeyUri string
param predictionKeyUri string
param storageConnectionUri string

// The SEER_* settings the app shares with the training job.
param sharedSeerSettings array

var contentShareName = toLower(functionAppName)

resource functionsIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: functionsIdentityName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Elastic Premium's content file share. The platform validates this setting when the app is created and does not
// accept a Key Vault reference for it without pre-creating the share, so it takes the key from listKeys at
// deployment time.
var contentShareConnectionString = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'

var trainingKeyReference = '@Microsoft.KeyVault(SecretUri=${trainingKeyUri})'
var predictionKeyReference = '@Microsoft.KeyVault(SecretUri=${predictionKeyUri})'
var storageConnectionReference = '@Microsoft.KeyVault(SecretUri=${storageConnectionUri})'

resource functionsPlan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: functionsPlanName
  location: location
  tags: tags
  kind: 'elastic'
  sku: {
    name: functionsPlanSku
    tier: 'ElasticPremium'
    capacity: functionsMinimumInstances
  }
  properties: {
    reserved: true // Linux
    maximumElasticWorkerCount: functionsMaximumInstances
  }
}

// The Functions app's own settings (the SEER_* settings it shares with the training job are added to these).
var functionAppSettings = [
  {
    name: 'FUNCTIONS_EXTENSION_VERSION'
    value: '~4'
  }
  {
    name: 'FUNCTIONS_WORKER_RUNTIME'
    value: 'python'
  }
  {
    // Read by the Functions host (blob trigger, timer locks) and by pipeline.settings (all of Seer's state).
    name: 'AzureWebJobsStorage'
    value: storageConnectionReference
  }
  {
    name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING'
    value: contentShareConnectionString
  }
  {
    name: 'WEBSITE_CONTENTSHARE'
    value: contentShareName
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsights.properties.ConnectionString
  }
  {
    name: 'SEER_TRAINING_KEY'
    value: trainingKeyReference
  }
  {
    name: 'SEER_PREDICTION_KEY'
    value: predictionKeyReference
  }
  {
    // Not a loopback address: the development-key fallback in pipeline.settings never applies on Azure.
    name: 'SEER_BIND_HOST'
    value: '0.0.0.0'
  }
  {
    // Two glibc heaps for the worker process instead of eight per core: memory freed by one request thread is
    // reused by the next instead of staying resident in its arena (issue 10, item 10; scripts/run.sh does the same).
    name: 'MALLOC_ARENA_MAX'
    value: '2'
  }
  {
    // `func azure functionapp publish` builds requirements.txt remotely (Oryx) for Linux.
    name: 'SCM_DO_BUILD_DURING_DEPLOYMENT'
    value: 'true'
  }
  {
    name: 'ENABLE_ORYX_BUILD'
    value: 'true'
  }
]

// No dependsOn: the identity's Key Vault and storage roles and the uploads container come from the key-vault and
// storage modules, which main.bicep deploys before this one (it passes their outputs in).
resource functionApp 'Microsoft.Web/sites@2023-12-01' = {
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${functionsIdentity.id}': {}
    }
  }
  properties: {
    serverFarmId: functionsPlan.id
    httpsOnly: true
    clientAffinityEnabled: false
    keyVaultReferenceIdentity: functionsIdentity.id
    siteConfig: {
      linuxFxVersion: 'Python|3.11'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      minimumElasticInstanceCount: functionsMinimumInstances
      functionAppScaleLimit: functionsMaximumInstances
      appSettings: concat(functionAppSettings, sharedSeerSettings)
    }
  }
}

output functionAppName string = functionApp.name
output apiEndpoint string = 'https://${functionApp.properties.defaultHostName}'
