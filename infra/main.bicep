// Seer on Azure, at scale: one resource group holding
//   - two Storage accounts reached only with Entra ID (no shared keys): the data account (Tables, Blobs, Queues: all
//     of Seer's state) and the Functions host's own account,
//   - the Functions app (Flex Consumption, Linux, Python 3.11, v2 programming model): HTTP APIs, portal, the drop
//     folder's Event Grid blob trigger and the timers, with always-ready HTTP instances,
//   - the Event Grid system topic on the data account and the subscription that delivers `uploads/` to the app,
//   - the training worker: a Container Apps Job started by KEDA's azure-queue scaler (with the job's identity), one
//     execution per message on the `training` queue, and the export worker, a second job on the same image and
//     environment started per message on the `exports` queue (`python -m training_job.exports`),
//   - Key Vault (API keys and the optional SMTP password), a container registry for the training image,
//   - Log Analytics + Application Insights, diagnostic settings (storage, Key Vault, the app), user-assigned managed
//     identities and their role assignments.
// This file holds the parameters, the names, the wiring and the outputs; each part is a module under modules/.
// Deploy: see infra/README.md. Resource API versions are GA versions, except Microsoft.Insights/diagnosticSettings
// (2021-05-01-preview is the newest version of that type; no GA version takes categoryGroup).

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

@description('Always-ready instances for the HTTP functions (the API, portal and prediction): no cold start for them. 0 lets HTTP scale to zero too.')
@minValue(0)
@maxValue(20)
param functionsAlwaysReadyInstances int = 1

@description('Most instances the Flex Consumption app scales out to (HTTP, ingestion and timers together).')
@minValue(40)
@maxValue(1000)
param functionsMaximumInstances int = 100

@description('Memory per Functions instance in MB (Flex Consumption: 512, 2048 or 4096). 4096 leaves room for the image decode budget and several cached ONNX models.')
@allowed([
  512
  2048
  4096
])
param functionsInstanceMemoryMB int = 4096

@description('Create the Event Grid subscription that delivers uploads/ to the app. Leave false until the app code is published (Event Grid validates the webhook, and its key exists only once the function runs), then deploy again with true: see infra/README.md.')
param uploadsEventSubscription bool = false

@description('Name of the training queue. Must match the service setting SEER_TRAINING_QUEUE (default "training").')
param trainingQueueName string = 'training'

@description('Name of the export queue. Must match the service setting SEER_EXPORT_QUEUE (default "exports").')
param exportQueueName string = 'exports'

@description('Tries per export request before the export is marked Failed (SEER_EXPORT_MAX_ATTEMPTS).')
@minValue(1)
param exportMaxAttempts int = 3

@description('Most export job executions running at once (each exports one model).')
@minValue(1)
param exportMaxConcurrentExecutions int = 4

@description('Hard limit of one export execution, in seconds: converting, the parity check on up to 200 training images, and the upload.')
@minValue(600)
param exportReplicaTimeoutSeconds int = 3600

@description('vCPUs per export execution (a decimal string, Consumption profile).')
param exportCpu string = '2.0'

@description('Memory per export execution (Consumption pairs 2Gi per vCPU).')
param exportMemory string = '4Gi'

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

@description('Optional serverless GPU workload profile for training (empty: CPU on the Consumption profile). The training job then runs trainingGpuImage with SEER_TRAINING_DEVICE=cuda; set trainingCpu/trainingMemory to match the profile.')
@allowed([
  ''
  'Consumption-GPU-NC8as-T4'
  'Consumption-GPU-NC24-A100'
])
param trainingGpuWorkloadProfileType string = ''

@description('The training image built with CUDA torch (training_job/Dockerfile with --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128), run by the training job on the GPU profile; the export job keeps trainingImage (exports need no GPU). Empty: the placeholder image until it is built.')
param trainingGpuImage string = ''

@description('SMTP server for training e-mail (SEER_SMTP_HOST): the training job mails TrainProject notificationEmailAddress when a run completes or fails. Empty (the default): no training mail, and no SEER_SMTP_* setting reaches the job.')
param smtpHost string = ''

@description('SMTP port (SEER_SMTP_PORT): 587 for STARTTLS, 465 for implicit TLS. Azure blocks outbound port 25.')
@minValue(1)
@maxValue(65535)
param smtpPort int = 587

@description('Sender address of training mail (SEER_SMTP_FROM_ADDRESS). Needed with smtpHost: without it no mail is sent.')
param smtpFromAddress string = ''

@description('SMTP login user (SEER_SMTP_USERNAME). Empty: the job does not log in.')
param smtpUsername string = ''

@description('SMTP connection security (SEER_SMTP_SECURITY): starttls, ssl (implicit TLS) or none.')
@allowed([
  'starttls'
  'ssl'
  'none'
])
param smtpSecurity string = 'starttls'

@secure()
@description('SMTP login password (SEER_SMTP_PASSWORD). Stored in Key Vault as seer-smtp-password and given to the training job as a Key Vault-backed secret, never as a plain setting. Empty (the default): no secret. Pass it on every deployment, like the keys.')
param smtpPassword string = ''

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
// Names
// ---------------------------------------------------------------------------------------------------------------

var prefix = toLower(namePrefix)
var suffix = uniqueString(resourceGroup().id, prefix)
var dataStorageAccountName = take('${prefix}st${suffix}', 24)
var hostStorageAccountName = take('${prefix}fn${suffix}', 24)
var keyVaultName = take('${prefix}kv${suffix}', 24)
var registryName = take('${prefix}acr${suffix}', 50)
var functionAppName = '${prefix}-func-${suffix}'
var functionsPlanName = '${prefix}-plan-${suffix}'
var logAnalyticsName = '${prefix}-logs-${suffix}'
var appInsightsName = '${prefix}-appi-${suffix}'
var containerAppsEnvironmentName = '${prefix}-cae-${suffix}'
var trainingJobName = take('${prefix}-train-${suffix}', 32)
var exportJobName = take('${prefix}-export-${suffix}', 32)
var functionsIdentityName = '${prefix}-func-id-${suffix}'
var trainingIdentityName = '${prefix}-train-id-${suffix}'

// The function the drop folder's Event Grid subscription delivers to (function_app.py's blob trigger).
var ingestFunctionName = 'ingest_upload'

// Seer's data account, as the app and the job read it (pipeline.settings; each adds SEER_DATA__clientId, its own
// identity). The Functions host reads the same settings for the blob trigger's connection `SEER_DATA`.
var dataStorageSettings = [
  {
    name: 'SEER_DATA__accountName'
    value: storage.outputs.dataStorageAccountName
  }
  {
    name: 'SEER_DATA__blobServiceUri'
    value: storage.outputs.dataBlobEndpoint
  }
  {
    name: 'SEER_DATA__queueServiceUri'
    value: storage.outputs.dataQueueEndpoint
  }
  {
    name: 'SEER_DATA__tableServiceUri'
    value: storage.outputs.dataTableEndpoint
  }
]

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
    name: 'SEER_EXPORT_QUEUE'
    value: exportQueueName
  }
  {
    name: 'SEER_EXPORT_MAX_ATTEMPTS'
    value: string(exportMaxAttempts)
  }
  {
    name: 'SEER_MAX_ADVANCED_BUDGET_HOURS'
    value: string(maxAdvancedBudgetHours)
  }
]

// Training e-mail (Settings smtp_*): only the training job sends mail, so only the job gets these, and only when an
// SMTP host is given. The password is not among them: it goes to Key Vault and reaches the job as a secret.
var smtpServerSettings = [
  {
    name: 'SEER_SMTP_HOST'
    value: smtpHost
  }
  {
    name: 'SEER_SMTP_PORT'
    value: string(smtpPort)
  }
  {
    name: 'SEER_SMTP_FROM_ADDRESS'
    value: smtpFromAddress
  }
  {
    name: 'SEER_SMTP_USERNAME'
    value: smtpUsername
  }
  {
    name: 'SEER_SMTP_SECURITY'
    value: smtpSecurity
  }
]
var noSettings = []
var trainingMailSettings = empty(smtpHost) ? noSettings : smtpServerSettings

// ---------------------------------------------------------------------------------------------------------------
// Modules. Each one takes the names it refers to from the outputs of the modules that create those resources, so
// ARM deploys it after them: role assignments exist before the app and the job that need them.
// ---------------------------------------------------------------------------------------------------------------

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: logAnalyticsName
    appInsightsName: appInsightsName
    location: location
    tags: tags
    logRetentionDays: logRetentionDays
  }
}

module identities 'modules/identities.bicep' = {
  name: 'identities'
  params: {
    functionsIdentityName: functionsIdentityName
    trainingIdentityName: trainingIdentityName
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    dataStorageAccountName: dataStorageAccountName
    hostStorageAccountName: hostStorageAccountName
    location: location
    tags: tags
    storageSku: storageSku
    trainingQueueName: trainingQueueName
    exportQueueName: exportQueueName
    functionsIdentityName: identities.outputs.functionsIdentityName
    trainingIdentityName: identities.outputs.trainingIdentityName
    logAnalyticsName: monitoring.outputs.logAnalyticsName
  }
}

module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  params: {
    keyVaultName: keyVaultName
    location: location
    tags: tags
    keyVaultPurgeProtection: keyVaultPurgeProtection
    trainingKey: trainingKey
    predictionKey: predictionKey
    smtpPassword: smtpPassword
    functionsIdentityName: identities.outputs.functionsIdentityName
    trainingIdentityName: identities.outputs.trainingIdentityName
    logAnalyticsName: monitoring.outputs.logAnalyticsName
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  params: {
    registryName: registryName
    location: location
    tags: tags
    registrySku: registrySku
    trainingIdentityName: identities.outputs.trainingIdentityName
  }
}

module functions 'modules/functions.bicep' = {
  name: 'functions'
  params: {
    functionAppName: functionAppName
    functionsPlanName: functionsPlanName
    location: location
    tags: tags
    functionsAlwaysReadyInstances: functionsAlwaysReadyInstances
    functionsMaximumInstances: functionsMaximumInstances
    functionsInstanceMemoryMB: functionsInstanceMemoryMB
    functionsIdentityName: identities.outputs.functionsIdentityName
    hostStorageAccountName: storage.outputs.hostStorageAccountName
    deploymentContainerName: storage.outputs.deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    trainingKeyUri: keyVault.outputs.trainingKeyUri
    predictionKeyUri: keyVault.outputs.predictionKeyUri
    sharedSeerSettings: sharedSeerSettings
    dataStorageSettings: dataStorageSettings
  }
}

module trainingJob 'modules/training-job.bicep' = {
  name: 'training-job'
  params: {
    containerAppsEnvironmentName: containerAppsEnvironmentName
    trainingJobName: trainingJobName
    location: location
    tags: tags
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    trainingIdentityName: identities.outputs.trainingIdentityName
    registryLoginServer: registry.outputs.registryLoginServer
    dataStorageAccountName: storage.outputs.dataStorageAccountName
    trainingQueueName: trainingQueueName
    exportJobName: exportJobName
    exportQueueName: exportQueueName
    exportMaxConcurrentExecutions: exportMaxConcurrentExecutions
    exportReplicaTimeoutSeconds: exportReplicaTimeoutSeconds
    exportCpu: exportCpu
    exportMemory: exportMemory
    maxAdvancedBudgetHours: maxAdvancedBudgetHours
    trainingOverheadSeconds: trainingOverheadSeconds
    trainingMaxConcurrentExecutions: trainingMaxConcurrentExecutions
    trainingPollingIntervalSeconds: trainingPollingIntervalSeconds
    trainingImage: trainingImage
    trainingCpu: trainingCpu
    trainingMemory: trainingMemory
    trainingGpuWorkloadProfileType: trainingGpuWorkloadProfileType
    trainingGpuImage: trainingGpuImage
    sharedSeerSettings: sharedSeerSettings
    dataStorageSettings: dataStorageSettings
    trainingMailSettings: trainingMailSettings
    smtpLogin: keyVault.outputs.smtpLogin
    smtpLoginUri: keyVault.outputs.smtpLoginUri
  }
}

module uploadEvents 'modules/upload-events.bicep' = {
  name: 'upload-events'
  params: {
    dataStorageAccountName: storage.outputs.dataStorageAccountName
    uploadsContainerName: storage.outputs.uploadsContainerName
    functionAppName: functions.outputs.functionAppName
    ingestFunctionName: ingestFunctionName
    uploadsEventSubscription: uploadsEventSubscription
    location: location
    tags: tags
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------------------------

@description('The API endpoint: give it to the Custom Vision SDK as its endpoint. The portal is served at its root.')
output apiEndpoint string = functions.outputs.apiEndpoint
output functionAppName string = functions.outputs.functionAppName
output dataStorageAccountName string = storage.outputs.dataStorageAccountName
output hostStorageAccountName string = storage.outputs.hostStorageAccountName
output uploadsTopicName string = uploadEvents.outputs.uploadsTopicName
output keyVaultName string = keyVault.outputs.keyVaultName
output registryName string = registry.outputs.registryName
output registryLoginServer string = registry.outputs.registryLoginServer
output trainingJobName string = trainingJob.outputs.trainingJobName
output trainingImage string = trainingJob.outputs.trainingImage
output trainingJobImage string = trainingJob.outputs.trainingJobImage
output exportJobName string = trainingJob.outputs.exportJobName
output applicationInsightsName string = monitoring.outputs.appInsightsName
