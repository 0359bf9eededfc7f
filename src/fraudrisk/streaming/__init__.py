"""fraudrisk.streaming: stream scorer and replay of lake transactions into Kafka."""
