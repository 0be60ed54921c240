"""Fleet server: MQTT ingest, SQL store, REST API, dashboard and dispatch."""
