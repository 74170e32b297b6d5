"""Alerts: watches (plain-language conditions) evaluated on every stored and captioned event,
delivered through a durable outbox (webhooks, MQTT) and live channels (SSE, WebSocket)."""
