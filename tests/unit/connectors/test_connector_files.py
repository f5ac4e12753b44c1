"""JSONL and CSV replay: parsing, dead letters for bad lines, and resuming at the saved byte offset."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from pipeline.connectors.files import CsvFileConnector, JsonlFileConnector
from pipeline.schemas import Reason
from tests.unit.connectors.recorded_api import collect


def jsonl_line(i: int, **extra) -> str:
    post = {"id": f"p{i}", "source": "file", "text": f"post {i}", "created_at": f"2024-03-01T10:00:0{i}+08:00"} | extra
    return json.dumps(post, ensure_ascii=False)


def write_jsonl(tmp_path, lines: list[str]):
    path = tmp_path / "posts.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    return path


async def test_jsonl_posts_get_their_fields_and_bad_lines_become_dead_letters(tmp_path, settings):
    path = write_jsonl(
        tmp_path,
        [
            jsonl_line(1, metrics={"pageviews": 10, "looking_at": 2}, lang="zh"),
            "{not json",
            jsonl_line(2),
            "",
            json.dumps({"id": "p3", "source": "file", "text": "no date"}),
            json.dumps({"schema": "raw_post", "v": 1} | json.loads(jsonl_line(4))),
        ],
    )
    emits = await collect(JsonlFileConnector(settings, path=path).stream(None))
    posts = [e.post for e in emits if e.post]
    dead = [e.dead_letter for e in emits if e.dead_letter]
    assert [p.id for p in posts] == ["p1", "p2", "p4"]
    assert posts[0].created_at == datetime(2024, 3, 1, 2, 0, 1, tzinfo=timezone.utc)
    assert posts[0].metrics.pageviews == 10 and posts[0].metrics.looking_at == 2 and posts[0].lang == "zh"
    assert [(d.reason, d.offset, d.original) for d in dead] == [
        (Reason.NOT_JSON, 2, b"{not json"),
        (Reason.MISSING_FIELD, 5, b'{"id": "p3", "source": "file", "text": "no date"}'),
    ]
    assert dead[0].topic == str(path.resolve()) and dead[0].partition == -1
    assert emits[-1].position == {"path": str(path.resolve()), "offset": path.stat().st_size, "line": 6}


async def test_jsonl_resumes_after_the_last_checkpointed_line(tmp_path, settings):
    path = write_jsonl(tmp_path, [jsonl_line(i) for i in range(1, 6)])
    connector = JsonlFileConnector(settings, path=path)
    first_run = await collect(connector.stream(None))
    resumed = await collect(connector.stream(first_run[1].position))
    assert [e.post.id for e in resumed] == ["p3", "p4", "p5"]


async def test_a_checkpoint_of_another_file_is_refused(tmp_path, settings):
    path = write_jsonl(tmp_path, [jsonl_line(1)])
    with pytest.raises(ValueError, match="belongs to"):
        await collect(JsonlFileConnector(settings, path=path).stream({"path": "/other.jsonl", "offset": 5, "line": 1}))


CSV_TEXT = (
    "id,source,account,author,created_at,text,lang,url,title,pageviews,likes,reposts,comments,looking_at\n"
    'w1,wechat,俄罗斯驻华大使馆,,2018-11-01T08:00:00+08:00,"普京访华,签署文件",zh,https://mp.weixin.qq.com/s/1,访华,52431,210,,,144\n'
    'w2,wechat,俄罗斯驻华大使馆,,2018-11-02T08:00:00+08:00,"第一段\n第二段 ""引用""",zh,,,100,,,,\n'
    "w3,wechat,x,,2018-11-03T08:00:00+08:00,too few fields\n"
    "w4,wechat,x,,2018-11-04T08:00:00+08:00,bad views,zh,,,many,,,,\n"
    "w5,wechat,x,,2018-11-05T08:00:00+08:00,fine,zh,,,,,,,\n"
)


def write_csv(tmp_path, text: str = CSV_TEXT):
    path = tmp_path / "posts.csv"
    path.write_bytes(text.encode())
    return path


async def test_csv_maps_columns_handles_multiline_cells_and_rejects_bad_rows(tmp_path, settings):
    path = write_csv(tmp_path)
    emits = await collect(CsvFileConnector(settings, path=path).stream(None))
    posts = {e.post.id: e.post for e in emits if e.post}
    dead = [e.dead_letter for e in emits if e.dead_letter]
    assert sorted(posts) == ["w1", "w2", "w5"]
    w1 = posts["w1"]
    assert (w1.text, w1.account, w1.author, w1.title) == ("普京访华,签署文件", "俄罗斯驻华大使馆", None, "访华")
    assert (w1.metrics.pageviews, w1.metrics.likes, w1.metrics.looking_at, w1.metrics.reposts) == (
        52431,
        210,
        144,
        None,
    )
    assert posts["w2"].text == '第一段\n第二段 "引用"'
    assert [(d.reason, d.offset) for d in dead] == [(Reason.INVALID_VALUE, 5), (Reason.WRONG_TYPE, 6)]
    assert dead[0].original == b"w3,wechat,x,,2018-11-03T08:00:00+08:00,too few fields\n"
    assert "pageviews" in dead[1].detail


async def test_csv_resume_skips_the_header_and_the_done_records_even_after_a_multiline_cell(tmp_path, settings):
    path = write_csv(tmp_path)
    connector = CsvFileConnector(settings, path=path)
    first_run = await collect(connector.stream(None))
    after_w2 = first_run[1].position
    assert after_w2["line"] == 4  # header + w1 + w2, whose quoted cell spans two lines
    resumed = await collect(connector.stream(after_w2))
    assert [e.post.id if e.post else e.dead_letter.offset for e in resumed] == [5, 6, "w5"]


async def test_csv_with_foreign_columns_is_refused_up_front(tmp_path, settings):
    path = write_csv(tmp_path, "id,source,created_at,body\n1,file,2024-01-01T00:00:00Z,x\n")
    with pytest.raises(ValueError, match=r"unknown columns \['body'\], missing \['text'\]"):
        await collect(CsvFileConnector(settings, path=path).stream(None))


async def test_invalid_utf8_in_a_csv_row_is_dead_lettered(tmp_path, settings):
    path = tmp_path / "posts.csv"
    path.write_bytes(
        b"id,source,created_at,text\n1,file,2024-01-01T00:00:00Z,caf\xe9\n2,file,2024-01-01T00:00:01Z,ok\n"
    )
    emits = await collect(CsvFileConnector(settings, path=path).stream(None))
    assert emits[0].dead_letter.reason == Reason.INVALID_UTF8 and emits[0].dead_letter.original.endswith(b"caf\xe9\n")
    assert emits[1].post.id == "2"
