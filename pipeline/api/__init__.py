"""The HTTP side: a FastAPI app serving the Custom Vision Training and Prediction APIs and the portal."""
