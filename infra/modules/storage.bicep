// Storage: two accounts, both reached only with Entra ID (allowSharedKeyAccess: false).
//   - the data account: all of Seer's state (tables, blobs, queues). The app creates its tables, containers and
//     queues on demand; the uploads container and the training queues are created here so the Event Grid
//     subscription and the KEDA scaler bind from the first start.
//   - the host account: the Functions host's own storage (AzureWebJobsStorage: timer locks, the blob extension's
//     queue, keys) and the Flex Consumption deployment package. Keeping it apart keeps the host's traffic and
//     housekeeping out of Seer's data and its scale targets.
// Each account's blob, queue and table services send their logs and transaction metrics to Log Analytics.

param dataStorageAccountName string
param hostStorageAccountName string
param location string
param tags object
param storageSku string
param trainingQueueName string
param exportQueueName string
param functionsIdentityName string
param trainingIdentityName string
param logAnalyticsName string

var uploadsContainerName = 'uploads'
var trainingPoisonQueueName = '${trainingQueueName}-poison'
var exportPoisonQueueName = '${exportQueueName}-poison'
var deploymentContainerName = 'app-package'

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
// Blob Data Contributor includes generateUserDelegationKey (user-delegation SAS for image URLs) at account scope, so
// no Storage Blob Delegator assignment is needed; Blob Data Owner (what the Functions blob trigger and the host's
// storage ask for) includes everything Contributor does.
var blobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var blobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var queueDataContributorRoleId = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var tableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var functionsDataRoles = [
  blobDataOwnerRoleId
  queueDataContributorRoleId
  tableDataContributorRoleId
]
var trainingDataRoles = [
  blobDataContributorRoleId
  queueDataContributorRoleId
  tableDataContributorRoleId
]
var functionsHostRoles = [
  blobDataOwnerRoleId
  queueDataContributorRoleId
]

// What both accounts share: StorageV2, TLS 1.2, HTTPS, no anonymous blobs, no shared keys (so no connection
// strings or account-key SAS anywhere), Entra ID by default in the portal.
var accountProperties = {
  accessTier: 'Hot'
  minimumTlsVersion: 'TLS1_2'
  supportsHttpsTrafficOnly: true
  allowBlobPublicAccess: false
  allowSharedKeyAccess: false
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

// Diagnostic settings of every storage service: all resource logs (StorageRead, StorageWrite, StorageDelete) and
// transaction metrics, to the workspace.
var serviceLogs = [
  {
    categoryGroup: 'allLogs'
    enabled: true
  }
]
var serviceMetrics = [
  {
    category: 'Transaction'
    enabled: true
  }
]

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: public endpoint with Entra ID only (no shared keys) by design: no virtual network here
  // checkov:skip=CKV_AZURE_206: storageSku defaults to Standard_ZRS; checkov does not evaluate the parameter
  // checkov:skip=CKV_AZURE_43: the name is take('<prefix>st<uniqueString>', 24), lower-case letters and digits; checkov does not evaluate it
  name: dataStorageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: accountProperties
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: public endpoint with Entra ID only (no shared keys) by design: no virtual network here
  // checkov:skip=CKV_AZURE_206: storageSku defaults to Standard_ZRS; checkov does not evaluate the parameter
  // checkov:skip=CKV_AZURE_43: the name is take('<prefix>fn<uniqueString>', 24), lower-case letters and digits; checkov does not evaluate it
  name: hostStorageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: accountProperties
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: dataStorage
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
  parent: dataStorage
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

resource exportQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: exportQueueName
}

resource exportPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: exportPoisonQueueName
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: dataStorage
  name: 'default'
}

resource hostBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: hostStorage
  name: 'default'
}

// Flex Consumption runs the app from the package `func azure functionapp publish` uploads here.
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: hostBlobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource hostQueueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: hostStorage
  name: 'default'
}

resource hostTableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: hostStorage
  name: 'default'
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalytics.id
    logs: serviceLogs
    metrics: serviceMetrics
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: logAnalytics.id
    logs: serviceLogs
    metrics: serviceMetrics
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: tableService
  properties: {
    workspaceId: logAnalytics.id
    logs: serviceLogs
    metrics: serviceMetrics
  }
}

resource hostBlobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: hostBlobService
  properties: {
    workspaceId: logAnalytics.id
    logs: serviceLogs
    metrics: serviceMetrics
  }
}

resource hostQueueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: hostQueueService
  properties: {
    workspaceId: logAnalytics.id
    logs: serviceLogs
    metrics: serviceMetrics
  }
}

resource hostTableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: hostTableService
  properties: {
    workspaceId: logAnalytics.id
    logs: serviceLogs
    metrics: serviceMetrics
  }
}

resource functionsIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: functionsIdentityName
}

resource trainingIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: trainingIdentityName
}

// The app's data roles: Blob Data Owner (the Event Grid blob trigger on uploads, and Seer's blobs), Queue Data
// Contributor (training requests, and the trigger's poison queue), Table Data Contributor.
resource functionsStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in functionsDataRoles: {
    name: guid(dataStorage.id, functionsIdentity.id, roleId)
    scope: dataStorage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: functionsIdentity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// The training job's data roles; Queue Data Contributor also lets the KEDA scaler read the queue's length.
resource trainingStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in trainingDataRoles: {
    name: guid(dataStorage.id, trainingIdentity.id, roleId)
    scope: dataStorage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: trainingIdentity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// The Functions host's roles on its own account: Blob Data Owner (locks, keys, the deployment package) and Queue
// Data Contributor (the blob extension's internal queue, which Event Grid deliveries fill).
resource functionsHostRolesAssigned 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in functionsHostRoles: {
    name: guid(hostStorage.id, functionsIdentity.id, roleId)
    scope: hostStorage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: functionsIdentity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// Modules that take a name from here deploy after this whole module: the accounts, their containers and queues,
// and the role assignments.
output dataStorageAccountName string = dataStorage.name
output hostStorageAccountName string = hostStorage.name
output uploadsContainerName string = uploadsContainerName
output deploymentContainerName string = deploymentContainerName
output dataBlobEndpoint string = dataStorage.properties.primaryEndpoints.blob
output dataQueueEndpoint string = dataStorage.properties.primaryEndpoints.queue
output dataTableEndpoint string = dataStorage.properties.primaryEndpoints.table
