"""The storage layer: the only code that talks to Azure Tables, Blobs and Queues."""

from pipeline.store.account import StorageAccount, StoragePolicy, get_storage

__all__ = ["StorageAccount", "StoragePolicy", "get_storage"]
