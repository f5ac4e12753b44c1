"""Create the pipeline's topics before anything writes to them (partitions must be fixed up front)."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.settings import Settings, Topics


async def ensure_topics(settings: Settings, names: tuple[str, ...] = Topics.ALL) -> list[str]:
    """Create the missing topics of this namespace; returns the ones created."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if settings.topic(name) not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(settings.topic(name), settings.topic_partitions, settings.topic_replication)
                        for name in missing
                    ]
                )
            except TopicAlreadyExistsError:
                pass  # another worker won the race; the topic is there, which is all we need
        return [settings.topic(name) for name in missing]
    finally:
        await admin.close()
