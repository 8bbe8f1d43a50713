"""MACB-DF detector package (Xiong et al., ICMR 2025); importing it registers "macbdf"."""

from avforensics.models.macbdf.model import MACBDF

__all__ = ["MACBDF"]
