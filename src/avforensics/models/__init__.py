"""models room (see DESIGN.md). The shipped detectors register when first asked for by name
(`registry.model_class`, `registry.registered_models`), so this package imports none of them."""
