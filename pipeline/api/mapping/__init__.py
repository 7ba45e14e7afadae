"""The one place where records and service results become Custom Vision wire shapes, and wire boxes become
`Box`es: one module per area. Routers call these; services never see a wire model."""
