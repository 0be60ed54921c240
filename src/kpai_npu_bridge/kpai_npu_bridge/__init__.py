"""Inference bridge: pluggable accelerator backends, model manifests, compiled-model cache,
certification kit (pure modules) and the npu_bridge lifecycle node.

Library entry point: kpai_npu_bridge.pipeline.Pipeline; CLI: kpai-npu.
"""
