"""The processor runtime: what every stateful Kafka consumer of Podium stands on.

Clients tuned for tansu and Kafka and the gap-safe reader (`kafka`), settings,
the batch outbox and acknowledged commits (`outbox`, `commits`), changelog
restore (`changelog`), group membership checks (`membership`) and a bounded
cache. It imports the wire contract (`podium.events`) and nothing above it.
"""
