// Seer on Azure, at scale: one resource group holding
//   - a Storage account (Tables, Blobs, Queues: all of Seer's state, and the Functions host's own storage),
//   - the Functions app (Elastic Premium, Linux, Python 3.11, v2 programming model): HTTP APIs, portal, blob-triggered
//     ingestion and the hourly retrain timer,
//   - the training worker: a Container Apps Job started by KEDA's azure-queue scaler, one execution per message on the
//     `training` queue,
//   - Key Vault (API keys and the storage connection string), a container registry for the training image,
//   - Log Analytics + Application Insights, user-assigned managed identities and their role assignments.
// Deploy: see infra/README.md. Resource API versions are GA versions.

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------------------------

@description('Short lower-case prefix for resource names (letters and digits, starting with a letter).')
@minLength(2)
@maxLength(8)
param namePrefix string = 'seer'

@description('Azure region for every resource.')
param location string = resourceGroup().location

@secure()
@minLength(16)
@description('The Custom Vision Training-Key clients must send. Stored in Key Vault, never in app settings.')
param trainingKey string

@secure()
@minLength(16)
@description('The Custom Vision Prediction-Key clients must send. Stored in Key Vault, never in app settings.')
param predictionKey string

@description('Storage redundancy. ZRS (the default) keeps the service up through a zone outage; use LRS in a region without availability zones.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_ZRS'

@description('Elastic Premium size for the Functions app (EP1: 1 vCPU/3.5 GB, EP2: 2/7 GB, EP3: 4/14 GB per instance).')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param functionsPlanSku string = 'EP1'

@description('Always-ready Functions instances (no cold start for the API).')
@minValue(1)
@maxValue(20)
param functionsMinimumInstances int = 1

@description('Most Functions instances the plan scales out to (HTTP and blob-trigger load).')
@minValue(1)
@maxValue(100)
param functionsMaximumInstances int = 20

@description('Name of the training queue. Must match the service setting SEER_TRAINING_QUEUE (default "training").')
param trainingQueueName string = 'training'

@description('Longest Advanced training budget a client may reserve, in hours (SEER_MAX_ADVANCED_BUDGET_HOURS).')
@minValue(1)
@maxValue(48)
param maxAdvancedBudgetHours int = 24

@description('Extra time a training execution gets beyond the reserved budget: loading images, cross-validation, ONNX export and verification.')
@minValue(600)
param trainingOverheadSeconds int = 7200

@description('Tries per training request before its iteration is marked Failed (SEER_TRAINING_MAX_ATTEMPTS).')
@minValue(1)
@maxValue(10)
param trainingMaxAttempts int = 5

@description('Most training job executions running at once (each trains one iteration).')
@minValue(1)
@maxValue(100)
param trainingMaxConcurrentExecutions int = 10

@description('Seconds between KEDA polls of the training queue.')
@minValue(10)
@maxValue(300)
param trainingPollingIntervalSeconds int = 30

@description('Training image reference, e.g. "<registry>.azurecr.io/seer-training:<tag>". Empty on the first deployment (the registry is empty then): a public placeholder image is used until the real image is built and this is set.')
param trainingImage string = ''

@description('vCPUs per training execution (a decimal string). The Consumption profile allows up to 4.')
param trainingCpu string = '4.0'

@description('Memory per training execution. The Consumption profile allows up to 8Gi, paired 2Gi per vCPU.')
param trainingMemory string = '8Gi'

@description('Optional serverless GPU workload profile for training (empty: CPU on the Consumption profile). GPU profiles need an image built with CUDA torch (see training_job/Dockerfile) and matching trainingCpu/trainingMemory.')
@allowed([
  ''
  'Consumption-GPU-NC8as-T4'
  'Consumption-GPU-NC24-A100'
])
param trainingGpuWorkloadProfileType string = ''

@description('Container registry tier.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param registrySku string = 'Basic'

@description('Key Vault purge protection: a deleted vault and its secrets cannot be purged before the retention period ends. Recommended for production; it cannot be turned off once on.')
param keyVaultPurgeProtection bool = true

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Tags applied to every resource.')
param tags object = {
  application: 'seer'
}

// ---------------------------------------------------------------------------------------------------------------
// Names and constants
// ---------------------------------------------------------------------------------------------------------------

var prefix = toLower(namePrefix)
var suffix = uniqueString(resourceGroup().id, prefix)
var storageAccountName = take('${prefix}st${suffix}', 24)
var keyVaultName = take('${prefix}kv${suffix}', 24)
var registryName = take('${prefix}acr${suffix}', 50)
var functionAppName = '${prefix}-func-${suffix}'
var functionsPlanName = '${prefix}-plan-${suffix}'
var logAnalyticsName = '${prefix}-logs-${suffix}'
var appInsightsName = '${prefix}-appi-${suffix}'
var containerAppsEnvironmentName = '${prefix}-cae-${suffix}'
var trainingJobName = take('${prefix}-train-${suffix}', 32)
var functionsIdentityName = '${prefix}-func-id-${suffix}'
var trainingIdentityName = '${prefix}-train-id-${suffix}'

var uploadsContainerName = 'uploads'
var trainingPoisonQueueName = '${trainingQueueName}-poison'
var contentShareName = toLower(functionAppName)

// The training execution's hard limit: the largest Advanced budget plus the fixed overhead. The job keeps its queue
// message invisible while it works, so a replica killed at this limit leaves the message to be retried.
// (Parenthesised on purpose: pycep, which tests/test_infra.py parses this file with, gets * and + precedence wrong.)
var trainingReplicaTimeoutSeconds = (maxAdvancedBudgetHours * 3600) + trainingOverheadSeconds

var useGpu = !empty(trainingGpuWorkloadProfileType)
var trainingWorkloadProfileName = useGpu ? 'gpu' : 'Consumption'
var consumptionProfile = [
  {
    name: 'Consumption'
    workloadProfileType: 'Consumption'
  }
]
var gpuProfiles = [
  {
    name: 'gpu'
    workloadProfileType: trainingGpuWorkloadProfileType
  }
]

// A public sample image that never touches the queue, used only until the real training image is in the registry.
var placeholderImage = 'mcr.microsoft.com/k8se/quickstart-jobs:latest'
var trainingImageRef = empty(trainingImage) ? placeholderImage : trainingImage

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
}
var storageDataRoles = [
  roles.storageBlobDataContributor
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

// ---------------------------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Storage: all of Seer's state. The app creates its tables, containers and queues on demand; the uploads container
// and the training queues are created here so the blob trigger and the KEDA scaler bind from the first start.
// ---------------------------------------------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // Shared keys stay enabled: pipeline.store connects with a connection string, and Elastic Premium's content
    // share (WEBSITE_CONTENTAZUREFILECONNECTIONSTRING) supports nothing else.
    allowSharedKeyAccess: true
    defaultToOAuthAuthentication: true
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
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
      days: 7
    }
  }
}

resource uploadsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: uploadsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource trainingQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: trainingQueueName
}

resource trainingPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: trainingPoisonQueueName
}

// The connection string is built from the account's key at deployment time (listKeys), never written down.
var storageConnectionString = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'

// ---------------------------------------------------------------------------------------------------------------
// Identities: one for the Functions app, one for the training job. User-assigned, so their role assignments exist
// before the app and the job are created (Key Vault references and the registry pull work on first start).
// ---------------------------------------------------------------------------------------------------------------

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

// Blob/Queue/Table Data Contributor for both identities: what Seer's storage layer does, granted to the identities
// so the deployment is ready for identity-based storage connections.
resource functionsStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in storageDataRoles: {
    name: guid(storage.id, functionsIdentity.id, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: functionsIdentity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource trainingStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in storageDataRoles: {
    name: guid(storage.id, trainingIdentity.id, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: trainingIdentity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// ---------------------------------------------------------------------------------------------------------------
// Key Vault: the API keys (from secure parameters) and the storage connection string (from listKeys).
// ---------------------------------------------------------------------------------------------------------------

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

resource functionsKeyVaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, functionsIdentity.id, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: functionsIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource trainingKeyVaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, trainingIdentity.id, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: trainingIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Versionless secret URIs: a rotated secret is picked up without redeploying.
var trainingKeyReference = '@Microsoft.KeyVault(SecretUri=${trainingKeySecret.properties.secretUri})'
var predictionKeyReference = '@Microsoft.KeyVault(SecretUri=${predictionKeySecret.properties.secretUri})'
var storageConnectionReference = '@Microsoft.KeyVault(SecretUri=${storageConnectionSecret.properties.secretUri})'

// ---------------------------------------------------------------------------------------------------------------
// The Functions app: Elastic Premium on Linux (see infra/README.md for why not Flex Consumption).
// ---------------------------------------------------------------------------------------------------------------

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

// Settings shared by the Functions app and the training job (names are pipeline.settings.Settings fields, SEER_ prefix).
var sharedSeerSettings = [
  {
    name: 'SEER_TRAINING_QUEUE'
    value: trainingQueueName
  }
  {
    name: 'SEER_TRAINING_MAX_ATTEMPTS'
    value: string(trainingMaxAttempts)
  }
  {
    name: 'SEER_MAX_ADVANCED_BUDGET_HOURS'
    value: string(maxAdvancedBudgetHours)
  }
]

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
    // Elastic Premium's content file share. The platform validates this setting when the app is created and
    // does not accept a Key Vault reference for it without pre-creating the share, so it takes the key from
    // listKeys at deployment time.
    name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING'
    value: storageConnectionString
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
    // `func azure functionapp publish` builds requirements.txt remotely (Oryx) for Linux.
    name: 'SCM_DO_BUILD_DURING_DEPLOYMENT'
    value: 'true'
  }
  {
    name: 'ENABLE_ORYX_BUILD'
    value: 'true'
  }
]

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
  dependsOn: [
    functionsKeyVaultRole
    functionsStorageRoles
    uploadsContainer
  ]
}

// ---------------------------------------------------------------------------------------------------------------
// Container registry for the training image; the training identity pulls with AcrPull (no admin user).
// ---------------------------------------------------------------------------------------------------------------

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
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

resource trainingAcrPullRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, trainingIdentity.id, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: trainingIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The training worker: a Container Apps Job. KEDA's azure-queue scaler polls the training queue and starts one
// execution per waiting message (queueLength 1), up to trainingMaxConcurrentExecutions at once. Each execution runs
// `python -m training_job`, which takes one message, trains, and exits. Retries come from the queue: a failed or
// killed execution leaves its message to reappear with a higher dequeue count, so the job itself never retries.
// ---------------------------------------------------------------------------------------------------------------

resource containerAppsEnvironment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: containerAppsEnvironmentName
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logAnalytics.properties.customerId
        sharedKey: logAnalytics.listKeys().primarySharedKey
      }
    }
    workloadProfiles: useGpu ? concat(consumptionProfile, gpuProfiles) : consumptionProfile
  }
}

// The training container's storage connection, from the Key Vault-backed job secret.
var trainingJobStorageEnv = [
  {
    name: 'AzureWebJobsStorage'
    secretRef: 'storage-connection'
  }
]

resource trainingJob 'Microsoft.App/jobs@2024-03-01' = {
  name: trainingJobName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${trainingIdentity.id}': {}
    }
  }
  properties: {
    environmentId: containerAppsEnvironment.id
    workloadProfileName: trainingWorkloadProfileName
    configuration: {
      triggerType: 'Event'
      replicaTimeout: trainingReplicaTimeoutSeconds
      replicaRetryLimit: 0
      secrets: [
        {
          name: 'storage-connection'
          keyVaultUrl: storageConnectionSecret.properties.secretUri
          identity: trainingIdentity.id
        }
      ]
      registries: [
        {
          server: registry.properties.loginServer
          identity: trainingIdentity.id
        }
      ]
      eventTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
        scale: {
          minExecutions: 0
          maxExecutions: trainingMaxConcurrentExecutions
          pollingInterval: trainingPollingIntervalSeconds
          rules: [
            {
              name: 'training-queue'
              type: 'azure-queue'
              // queueLengthStrategy 'all' counts the messages running executions hold invisible too: KEDA starts
              // (messages - running executions) new ones, so a request that arrives while others train starts its
              // own execution at once. With 'visibleonly' it would wait for a running execution to finish.
              metadata: {
                accountName: storage.name
                queueName: trainingQueueName
                queueLength: '1'
                queueLengthStrategy: 'all'
              }
              auth: [
                {
                  secretRef: 'storage-connection'
                  triggerParameter: 'connection'
                }
              ]
            }
          ]
        }
      }
    }
    template: {
      containers: [
        {
          name: 'training'
          image: trainingImageRef
          resources: {
            cpu: json(trainingCpu)
            memory: trainingMemory
          }
          env: concat(trainingJobStorageEnv, sharedSeerSettings)
        }
      ]
    }
  }
  dependsOn: [
    trainingAcrPullRole
    trainingKeyVaultRole
    trainingStorageRoles
    trainingQueue
    trainingPoisonQueue
  ]
}

// ---------------------------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------------------------

@description('The API endpoint: give it to the Custom Vision SDK as its endpoint. The portal is served at its root.')
output apiEndpoint string = 'https://${functionApp.properties.defaultHostName}'
output functionAppName string = functionApp.name
output storageAccountName string = storage.name
output keyVaultName string = keyVault.name
output registryName string = registry.name
output registryLoginServer string = registry.properties.loginServer
output trainingJobName string = trainingJob.name
output trainingImage string = trainingImageRef
output applicationInsightsName string = appInsights.name
