"""Source connectors: each pushes RawPosts onto ``posts.raw``; `run_connector` is the CLI's entry point.

``run_connector(name, settings=None, **options)``; options per connector (all pull connectors also take
``name`` (checkpoint file / metrics label), ``max_posts_per_s``, ``checkpoint_every``, ``checkpoint_interval_s``;
polled ones ``poll_interval_s``, ``once``, ``requests_per_s``, ``base_url``):

- ``jsonl`` / ``csv``: ``path``, ``speed`` (0 = as fast as possible, 60 = a minute of posts per second)
- ``rss``: ``feeds`` (URL or list), ``seen_capacity``
- ``weibo``: ``uid`` or ``screen_name``, ``access_token`` (or env WEIBO_ACCESS_TOKEN), ``count``, ``max_pages``
- ``wechat``: ``fakeid``, ``account``, ``token`` (or env WECHAT_TOKEN), ``path``, ``count``, ``max_pages``
- ``x-search``: ``query``, ``bearer_token`` (or env X_BEARER_TOKEN), ``max_results``, ``max_pages``
- ``x-stream``: ``bearer_token``, ``max_connections``
- ``http`` (push endpoint): ``token`` (or env PUSH_TOKEN), ``host``, ``port``, ``max_body_bytes``
"""

from __future__ import annotations

from typing import Any

from pipeline.connectors.base import run_until_signalled
from pipeline.connectors.files import CsvFileConnector, JsonlFileConnector
from pipeline.connectors.push import PushEndpoint
from pipeline.connectors.rss import RssConnector
from pipeline.connectors.wechat import WechatConnector
from pipeline.connectors.weibo import WeiboConnector
from pipeline.connectors.x import XSearchConnector, XStreamConnector
from pipeline.settings import Settings

CONNECTORS: dict[str, type] = {
    cls.kind: cls
    for cls in (
        JsonlFileConnector,
        CsvFileConnector,
        RssConnector,
        WeiboConnector,
        WechatConnector,
        XSearchConnector,
        XStreamConnector,
        PushEndpoint,
    )
}


def run_connector(name: str, settings: Settings | None = None, **options: Any) -> Any:
    """Build connector `name` (a key of CONNECTORS) with `options` and run it until it ends or gets SIGTERM/SIGINT."""
    try:
        cls = CONNECTORS[name]
    except KeyError:
        raise ValueError(f"unknown connector {name!r}; choose from {sorted(CONNECTORS)}") from None
    return run_until_signalled(cls(settings or Settings(), **options))
