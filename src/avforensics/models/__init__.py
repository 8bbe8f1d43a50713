"""models room (see DESIGN.md)."""

import avforensics.models.avprompt  # noqa: F401  (registers "avprompt")
