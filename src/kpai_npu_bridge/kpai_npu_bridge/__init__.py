"""Inference bridge node with pluggable accelerator backends, model manifests, compiled-model cache and certification kit."""
