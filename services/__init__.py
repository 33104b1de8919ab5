"""exbus services: bus plumbing, venue adapters, ingestor, executor, vault, simulator."""
