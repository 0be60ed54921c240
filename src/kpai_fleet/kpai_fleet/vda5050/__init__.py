"""VDA 5050 v2 message models, topics and the order <-> mission mapping (pure Python)."""
