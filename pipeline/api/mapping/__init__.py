"""The one place where records and service results become Custom Vision wire shapes, and wire boxes become
`Box`es: one module per area. Routers call these; services never see a wire model."""

from collections.abc import Callable

Links = Callable[[str], str]  # blob name -> time-limited read-only URL
