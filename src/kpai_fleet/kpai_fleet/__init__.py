"""Robot-side VDA 5050 agent and the fleet server (store, REST API, live dashboard, dispatch)."""
