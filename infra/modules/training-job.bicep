// The training worker: a Container Apps Job. KEDA's azure-queue scaler polls the training queue and starts one
// execution per waiting message (queueLength 1), up to trainingMaxConcurrentExecutions at once. Each execution runs
// `python -m training_job`, which takes one message, trains, and exits. Retries come from the queue: a failed or
// killed execution leaves its message to reappear with a higher dequeue count, so the job itself never retries.
// Storage is identity-based: the scale rule and the container both use the job's user-assigned identity (API
// 2025-01-01 is the first GA version whose scale rules take `identity`); no connection string exists anywhere.

param containerAppsEnvironmentName string
param trainingJobName string
param location string
param tags object
param logAnalyticsName string
param trainingIdentityName string
param registryLoginServer string
param dataStorageAccountName string
param trainingQueueName string
param exportJobName string
param exportQueueName string
param exportMaxConcurrentExecutions int
param exportReplicaTimeoutSeconds int
param exportCpu string
param exportMemory string
param maxAdvancedBudgetHours int
param trainingOverheadSeconds int
param trainingMaxConcurrentExecutions int
param trainingPollingIntervalSeconds int
param trainingImage string
param trainingCpu string
param trainingMemory string
param trainingGpuWorkloadProfileType string
param trainingGpuImage string

// The SEER_* settings the job shares with the Functions app, and the data account's SEER_DATA__* settings.
param sharedSeerSettings array
param dataStorageSettings array

// Training e-mail: the SEER_SMTP_* settings (none when no SMTP host is given), whether a login password is stored in
// Key Vault, and that secret's URI (empty when there is none).
param trainingMailSettings array
param smtpLogin bool
param smtpLoginUri string

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
var gpuImageRef = empty(trainingGpuImage) ? placeholderImage : trainingGpuImage
var trainingJobImageRef = useGpu ? gpuImageRef : trainingImageRef

// Where the training job trains (training_job/device.py). On the GPU profile it must be CUDA: a CPU-only image there
// fails at once, leaving its message queued, instead of training for hours on the CPU unnoticed.
var trainingDeviceSettings = [
  {
    name: 'SEER_TRAINING_DEVICE'
    value: useGpu ? 'cuda' : 'cpu'
  }
]

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource trainingIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: trainingIdentityName
}

resource containerAppsEnvironment 'Microsoft.App/managedEnvironments@2025-01-01' = {
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

// The job's one possible secret, the SMTP password, comes from Key Vault, read with the job's identity, and only
// when one is stored.
var smtpLoginSecrets = [
  {
    name: 'smtp-password'
    keyVaultUrl: smtpLoginUri
    identity: trainingIdentity.id
  }
]
var noItems = []
var trainingJobSecrets = smtpLogin ? smtpLoginSecrets : noItems

// The data account with the job's identity (pipeline.settings reads SEER_DATA__* and uses DefaultAzureCredential).
var trainingJobStorageEnv = [
  {
    name: 'SEER_DATA__clientId'
    value: trainingIdentity.properties.clientId
  }
]
var smtpLoginEnv = [
  {
    name: 'SEER_SMTP_PASSWORD'
    secretRef: 'smtp-password'
  }
]
var trainingJobSmtpLoginEnv = smtpLogin ? smtpLoginEnv : noItems

// No dependsOn: the identity's AcrPull, Key Vault and storage roles and the training queues come from the registry,
// key-vault and storage modules, which main.bicep deploys before this one (it passes their outputs in).
resource trainingJob 'Microsoft.App/jobs@2025-01-01' = {
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
      secrets: trainingJobSecrets
      registries: [
        {
          server: registryLoginServer
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
                accountName: dataStorageAccountName
                queueName: trainingQueueName
                queueLength: '1'
                queueLengthStrategy: 'all'
              }
              // KEDA reads the queue's length with the job's identity (Storage Queue Data Contributor).
              identity: trainingIdentity.id
            }
          ]
        }
      }
    }
    template: {
      containers: [
        {
          name: 'training'
          image: trainingJobImageRef
          resources: {
            cpu: json(trainingCpu)
            memory: trainingMemory
          }
          env: concat(trainingJobStorageEnv, dataStorageSettings, sharedSeerSettings, trainingDeviceSettings, trainingMailSettings, trainingJobSmtpLoginEnv)
        }
      ]
    }
  }
}

// The export worker: the same image, identity and environment, started per message on the exports queue. It runs
// `python -m training_job.exports` (convert, parity check on the training images, upload) on the Consumption profile:
// exporting needs no GPU. No SMTP settings: exports send no mail.
resource exportJob 'Microsoft.App/jobs@2025-01-01' = {
  name: exportJobName
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
    workloadProfileName: 'Consumption'
    configuration: {
      triggerType: 'Event'
      replicaTimeout: exportReplicaTimeoutSeconds
      replicaRetryLimit: 0
      registries: [
        {
          server: registryLoginServer
          identity: trainingIdentity.id
        }
      ]
      eventTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
        scale: {
          minExecutions: 0
          maxExecutions: exportMaxConcurrentExecutions
          pollingInterval: trainingPollingIntervalSeconds
          rules: [
            {
              name: 'export-queue'
              type: 'azure-queue'
              metadata: {
                accountName: dataStorageAccountName
                queueName: exportQueueName
                queueLength: '1'
                queueLengthStrategy: 'all'
              }
              identity: trainingIdentity.id
            }
          ]
        }
      }
    }
    template: {
      containers: [
        {
          name: 'export'
          image: trainingImageRef
          command: [
            'python'
            '-m'
            'training_job.exports'
          ]
          resources: {
            cpu: json(exportCpu)
            memory: exportMemory
          }
          env: concat(trainingJobStorageEnv, dataStorageSettings, sharedSeerSettings)
        }
      ]
    }
  }
}

output trainingJobName string = trainingJob.name
output trainingImage string = trainingImageRef
output trainingJobImage string = trainingJobImageRef
output exportJobName string = exportJob.name
