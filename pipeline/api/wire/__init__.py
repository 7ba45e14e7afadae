"""Wire shapes of the Custom Vision REST API (camelCase exactly as the official specs), one module per area."""
