"""`kpai-fleet conformance`: check a VDA 5050 2.0 vehicle of any maker over MQTT."""
