"""models room (see DESIGN.md)."""

import avforensics.models.avprompt  # noqa: F401  (registers "avprompt")
import avforensics.models.cad  # noqa: F401  (registers "cad")
import avforensics.models.macbdf  # noqa: F401  (registers "macbdf")
