from datetime import datetime, timezone

import pytest

from pipeline.schemas import RawPost


@pytest.fixture
def make_post():
    """RawPost factory: only the fields a transform looks at need to be given."""

    def make(text: str, *, id: str = "p1", lang: str | None = None, title: str | None = None) -> RawPost:
        created_at = datetime(2024, 5, 1, tzinfo=timezone.utc)
        return RawPost(id=id, source="weibo", text=text, lang=lang, title=title, created_at=created_at)

    return make
