"""FuriosaAI RNGD backend plug-in for kpai_npu_bridge."""
