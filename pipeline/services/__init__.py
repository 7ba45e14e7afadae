"""Services: one module per Custom Vision concept, over the storage layer; they never see wire models."""
