// The Functions app on the Flex Consumption plan (Linux, Python 3.11): always-ready instances for HTTP (the API,
// the portal and prediction stay warm), everything else scales from zero. The drop folder's blob trigger uses the
// Event Grid source (modules/upload-events.bicep), the only blob trigger Flex Consumption runs.
// Storage is identity-based: the host's account through AzureWebJobsStorage__*, Seer's data account through
// SEER_DATA__* (the blob trigger's connection, and what pipeline.settings reads), both with the app's
// user-assigned identity.

param functionAppName string
param functionsPlanName string
param location string
param tags object
param functionsAlwaysReadyInstances int
param functionsMaximumInstances int
param functionsInstanceMemoryMB int
param functionsIdentityName string
param hostStorageAccountName string
param deploymentContainerName string
param appInsightsName string
param logAnalyticsName string

// Versionless Key Vault URIs of the secrets behind the app's Key Vault references.
param trainingKeyUri string
param predictionKeyUri string

// The SEER_* settings the app shares with the training job, and the data account's SEER_DATA__* settings.
param sharedSeerSettings array
param dataStorageSettings array

resource functionsIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: functionsIdentityName
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

var trainingKeyReference = '@Microsoft.KeyVault(SecretUri=${trainingKeyUri})'
var predictionKeyReference = '@Microsoft.KeyVault(SecretUri=${predictionKeyUri})'

resource functionsPlan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy is not offered in every region; add zoneRedundant where it is
  name: functionsPlanName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

// The app's own settings; the shared SEER_* and SEER_DATA__* settings are added to these. Flex Consumption takes
// the runtime, the scale and the deployment package from functionAppConfig: FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION, WEBSITE_CONTENT* and the Oryx build settings are not set (the plan rejects or
// ignores them; `func azure functionapp publish` builds remotely).
var functionAppSettings = [
  {
    // The host's storage (timer locks, keys, the blob extension's queue), with the app's identity.
    name: 'AzureWebJobsStorage__accountName'
    value: hostStorage.name
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: functionsIdentity.properties.clientId
  }
  {
    // The identity behind SEER_DATA: the blob trigger's connection (the host needs `credential` to use a
    // user-assigned identity) and pipeline.settings' DefaultAzureCredential.
    name: 'SEER_DATA__credential'
    value: 'managedidentity'
  }
  {
    name: 'SEER_DATA__clientId'
    value: functionsIdentity.properties.clientId
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
]

// No dependsOn: the identity's Key Vault and storage roles and the deployment container come from the key-vault
// and storage modules, which main.bicep deploys before this one (it passes their outputs in).
resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the Custom Vision API and the portal are public endpoints by design, guarded by the API keys
  // checkov:skip=CKV_AZURE_17: clients authenticate with Training-Key/Prediction-Key headers, as Custom Vision's; no client certificates
  // checkov:skip=CKV_AZURE_212: an App Service worker-count check; Flex Consumption keeps functionsAlwaysReadyInstances and scales out on its own
  // checkov:skip=CKV_AZURE_213: the API has no health route yet (infra/README.md, Hardening not done here)
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
    keyVaultReferenceIdentity: functionsIdentity.id
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: concat(functionAppSettings, sharedSeerSettings, dataStorageSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: functionsIdentity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: functionsMaximumInstances
        instanceMemoryMB: functionsInstanceMemoryMB
        // The `http` group is every HTTP function: here the one ASGI app (API, portal, prediction).
        alwaysReady: [
          {
            name: 'http'
            instanceCount: functionsAlwaysReadyInstances
          }
        ]
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// The host's and the functions' logs (FunctionAppLogs) and the app's metrics, besides Application Insights.
resource functionAppDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: functionApp
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        category: 'FunctionAppLogs'
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

output functionAppName string = functionApp.name
output apiEndpoint string = 'https://${functionApp.properties.defaultHostName}'
