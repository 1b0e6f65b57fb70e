"""`make replay`: TLC months replayed in pickup-time order on a simulated clock through the service's real
code (prediction service, capture format, monitor, template alarms), in-process over moto (docs/replay.md)."""
