"""Task services: independent Kafka consumers that run the handlers users write."""
