"""Create the pipeline's topics before anything writes to them, with configs chosen by purpose.

Partition counts must be fixed up front, and broker defaults are wrong for every topic here:
- `posts.raw` and `posts.enriched` carry the post's own time as record time (replay and
  backtests select by it), so a time retention would delete a backfill of 2015 posts within
  days of writing it: they are kept without a time limit (ClickHouse's TTL is the retention of
  the data; give the brokers disk for the replay log, or a `retention.bytes` of your own);
- `posts.dlq` is written at failure time and kept `DLQ_RETENTION_DAYS` for operators;
- `alerts` is compacted: the newest transition of every alert stays, which is what a subscriber
  (`pipeline.client`, the Alertmanager bridge) rebuilds its state from; every transition stays
  at least a day, so a subscriber away for less misses none;
- every topic gets `min.insync.replicas` = `TOPIC_MIN_INSYNC_REPLICAS` (acks=all producers).

`python -m pipeline topics` (the compose deployment's one-shot `init` job) also brings existing
topics to these configs; workers create what is missing on start. The embedded broker (tansu)
takes the configs at creation but cannot alter them.
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import IncompatibleBrokerVersion, TopicAlreadyExistsError

from pipeline.settings import Settings, Topics

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000


def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    """Broker configs of the logical topic `name` (see the module docstring for why)."""
    by_purpose = {
        Topics.RAW: {"cleanup.policy": "delete", "retention.ms": "-1", "message.timestamp.type": "CreateTime"},
        Topics.ENRICHED: {"cleanup.policy": "delete", "retention.ms": "-1", "message.timestamp.type": "CreateTime"},
        Topics.DLQ: {"cleanup.policy": "delete", "retention.ms": str(settings.dlq_retention_days * DAY_MS)},
        Topics.ALERTS: {"cleanup.policy": "compact", "min.compaction.lag.ms": str(DAY_MS)},
    }
    return {**by_purpose[name], "min.insync.replicas": str(settings.topic_min_insync_replicas)}


def _admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**settings.kafka_client_kwargs())


async def ensure_topics(settings: Settings, names: tuple[str, ...] = Topics.ALL) -> list[str]:
    """Create the missing topics of this namespace with their configs; returns the ones created."""
    admin = _admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if settings.topic(name) not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            settings.topic(name), settings.topic_partitions, settings.topic_replication,
                            topic_configs=topic_configs(settings, name),
                        )
                        for name in missing
                    ]
                )  # fmt: skip
            except TopicAlreadyExistsError:
                pass  # another worker won the race; the topic is there, which is all we need
        return [settings.topic(name) for name in missing]
    finally:
        await admin.close()


async def current_configs(admin: AIOKafkaAdminClient, topic: str, keys: list[str]) -> dict[str, str]:
    """The topic's values of `keys` (all configs are asked for: the embedded broker drops a
    connection that names some)."""
    (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    (resource,) = response.resources
    return {entry[0]: entry[1] for entry in resource[4] if entry[0] in keys}


async def apply_topic_configs(settings: Settings, names: tuple[str, ...] = Topics.ALL) -> dict[str, dict[str, str]]:
    """Set the configs of existing topics that differ from `topic_configs`; returns, per topic,
    the configs it changed. Kafka's AlterConfigs replaces a topic's whole set of overrides, so
    this command owns them. A broker that cannot alter configs is logged and left as it is."""
    admin = _admin(settings)
    await admin.start()
    changed: dict[str, dict[str, str]] = {}
    try:
        for name in names:
            topic, wanted = settings.topic(name), topic_configs(settings, name)
            current = await current_configs(admin, topic, list(wanted))
            differing = {key: value for key, value in wanted.items() if current.get(key) != value}
            if not differing:
                continue
            try:
                await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, wanted)])
            except IncompatibleBrokerVersion:
                log.warning("the broker cannot alter topic configs; %s keeps %s", topic, current)
                continue
            changed[topic] = differing
        return changed
    finally:
        await admin.close()
