// The drop folder's delivery: an Event Grid system topic on the data account, and the subscription that sends each
// BlobCreated event under `uploads/` to the Functions host's blob extension webhook for the ingest function (the
// blob trigger's Event Grid source). The host turns each event into a message on its internal queue and runs the
// function with retries (host.json: blobs.poisonBlobThreshold).
//
// The subscription needs the app's code: Event Grid validates the webhook when the subscription is created, and the
// webhook's key (the `blobs_extension` system key) exists only once the host has started with the function. So it is
// created only when `uploadsEventSubscription` is true: deploy once without it, publish the code, deploy again with
// it (infra/README.md). Blobs written before it exists are not delivered.

param dataStorageAccountName string
param uploadsContainerName string
param functionAppName string
param ingestFunctionName string
param uploadsEventSubscription bool
param location string
param tags object

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageAccountName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource uploadsTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: '${dataStorageAccountName}-events'
  location: location
  tags: tags
  properties: {
    source: dataStorage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// ARM evaluates list functions even in a resource whose condition is false, so the key is read only when wanted.
var blobsWebhookKey = uploadsEventSubscription ? listKeys(resourceId('Microsoft.Web/sites/host', functionAppName, 'default'), '2024-04-01').systemKeys.blobs_extension : ''
var blobsWebhookUrl = 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${ingestFunctionName}&code=${blobsWebhookKey}'

resource uploadsSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (uploadsEventSubscription) {
  parent: uploadsTopic
  name: 'ingest-uploads'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: blobsWebhookUrl
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${uploadsContainerName}/'
    }
    eventDeliverySchema: 'EventGridSchema'
    // Event Grid's longest retry: a day of attempts while the app is down or failing to take the event.
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

output uploadsTopicName string = uploadsTopic.name
