"""Typed errors of backbone loading, each message naming the file (or id) and the reason."""


class BackboneWeightsError(ValueError):
    """A weights source that cannot be read as the asked backbone (wrong format, missing tensors, ...)."""


class WeightsUnavailableError(BackboneWeightsError):
    """A hub id that cannot be fetched (e.g. offline); the message says how to get the weights offline."""
