"""The dashboard page in headless Chromium: it renders the data, escapes it, and updates live.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (skipped without them).
"""

from __future__ import annotations

import io
import re
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from pipeline.sinks import metrics
from tests.integration.web.dashboard_data import MARKER_TEXT, OPEN_ALERT_KEY, TOPICS, make_posts

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.integration,
]


@pytest.fixture
def browser(tmp_path):
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900", "--lang=en-GB",
    ):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def shown_number(driver, element_id: str) -> int:
    return int(re.sub(r"\D", "", driver.find_element(By.ID, element_id).text) or -1)


def assert_not_blank(png: bytes) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    pixels = image.width * image.height
    colours = image.getcolors(maxcolors=pixels)
    background = max(colours)[0]
    assert len(colours) > 500, f"only {len(colours)} distinct colours"
    assert pixels - background > pixels * 0.15, "screenshot is mostly background"


def test_page_renders_data_escaped_and_updates_live(dashboard, browser, tmp_path):
    browser.get(f"{dashboard.url}/?refresh=1000")
    body = browser.find_element(By.TAG_NAME, "body")
    WebDriverWait(browser, 60).until(lambda _: body.get_attribute("data-ready") == "true")

    # charts: one stacked area per topic, a line per topic in the sentiment chart, axes with labels
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-volume-topic svg polygon")) == len(TOPICS)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-sentiment-topic svg path")) == len(TOPICS)
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-throughput svg text")

    # the open alert row, and the watch detail of the first open (critical) alert
    alerts = browser.find_element(By.ID, "table-open-alerts").text
    assert "topic_political_affairs" in alerts and OPEN_ALERT_KEY in alerts and "CRITICAL" in alerts.upper()
    assert browser.find_element(By.ID, "watch").get_attribute("value") == "topic_political_affairs"
    assert OPEN_ALERT_KEY in browser.find_element(By.ID, "table-watch").text

    # post text: CJK + Cyrillic shown verbatim, its markup stays text (no element injected)
    headline = browser.find_element(By.CSS_SELECTOR, "#table-negative-posts tbody tr .headline")
    assert headline.get_attribute("textContent") == MARKER_TEXT
    assert not browser.find_elements(By.CSS_SELECTOR, "main img")
    assert shown_number(browser, "kpi-posts") == dashboard.posts_in_range

    png = browser.get_screenshot_as_png()
    (tmp_path / "dashboard.png").write_bytes(png)
    assert_not_blank(png)

    # live update: rows inserted and dead letters counted after the page loaded appear without a reload
    refreshes = int(body.get_attribute("data-refreshes"))
    dead_letters = shown_number(browser, "kpi-dlq")
    added = make_posts(10_000, 37, datetime.now(timezone.utc), timedelta(minutes=20))
    dashboard.sink.insert_posts(added)
    metrics.DLQ.labels(reason="too_large").inc(2)
    WebDriverWait(browser, 30).until(lambda d: shown_number(d, "kpi-posts") == dashboard.posts_in_range + len(added))
    WebDriverWait(browser, 30).until(lambda d: shown_number(d, "kpi-dlq") == dead_letters + 2)
    assert int(body.get_attribute("data-refreshes")) > refreshes

    browser.set_window_size(1280, 2400)  # the whole page, for people reviewing the layout
    (tmp_path / "dashboard-full.png").write_bytes(browser.get_screenshot_as_png())
