"""Mobilint ARIES/REGULUS backend plug-in for kpai_npu_bridge."""
