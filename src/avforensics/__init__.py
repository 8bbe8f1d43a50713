"""avforensics: audio-visual deepfake video detection on one media pipeline, engine and inference API."""

__version__ = "0.1.0"
