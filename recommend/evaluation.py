"""The offline measure of the recommender: each buyer's most recent intent held out, recall@10,
NDCG@10 and catalogue coverage of the baselines and the blend, the blend's weights tuned on the
training side only, and a bootstrap interval on the blend's gain over provincial popularity."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from recommend import ranking

#: The cut-off of the measures (recall@K, NDCG@K).
K = 10
#: A buyer is measured when it has at least this many interactions (views, favourites,
#: shares, intents), its held-out intent included.
MIN_INTERACTIONS = 3
BOOTSTRAP_SAMPLES = 2_000
#: The grid the blend's weights are tuned over, on the training side.
GRID = {
    "knn": (0.0, 0.5, 1.0),
    "seen": (0.0, 0.5, 1.0, 2.0),
    "province": (0.0, 0.3, 1.0),
    "content": (0.0, 0.3),
    "category": (0.0, 0.3, 1.0),
    "half_life": (4.0, 16.0),
}


@dataclass(frozen=True)
class Split:
    """What a model may learn from, and each measured buyer's held-out project."""

    train: list[ranking.Interaction]
    searched: list[ranking.Searched]
    held_out: dict[str, int]
    #: When each measured buyer signed its held-out project: its own doings from then on
    #: are left out of the training side too.
    cut: dict[str, dt.datetime]


#: The two moments a held-out intent is predicted from: when it was signed (everything before
#: it known, the way to it included: the search, the page it was signed from), or before its
#: way (the buyer's history up to its previous intent). A buyer signs on the project's page,
#: so the first finds the held-out project among the last ones viewed; the second asks what
#: the buyer signs next.
PROTOCOLS = ("at the intent", "before its way")


def split(interactions: Sequence[ranking.Interaction], searched: Sequence[ranking.Searched],
          *, before_way: bool = False) -> Split:
    """Hold out each buyer's most recent intent (buyers with MIN_INTERACTIONS or more), and
    everything that buyer did from that moment on (`before_way`: from its previous intent
    on). An intent for a project the buyer had signed before is not a recommendation to
    make: the most recent intent for a new project is held out instead."""
    by_actor: dict[str, list[ranking.Interaction]] = {}
    for row in interactions:
        by_actor.setdefault(row.actor, []).append(row)
    held_out: dict[str, int] = {}
    cut: dict[str, dt.datetime] = {}
    for actor, rows in by_actor.items():
        if len(rows) < MIN_INTERACTIONS:
            continue
        intents = sorted((row for row in rows if row.kind == "intent"),
                         key=lambda row: row.at)
        for position in range(len(intents) - 1, -1, -1):
            candidate = intents[position]
            if all(row.project_id != candidate.project_id for row in intents[:position]):
                held_out[actor], cut[actor] = candidate.project_id, candidate.at
                if before_way:
                    earlier = [row.at for row in rows if row.kind == "intent"
                               and row.at < candidate.at]
                    # Just after the previous intent; with none, before anything it did.
                    cut[actor] = (max(earlier) + dt.timedelta(microseconds=1) if earlier
                                  else min(row.at for row in rows))
                break
    train = [row for row in interactions if row.actor not in cut or row.at < cut[row.actor]]
    kept_searches = [row for row in searched if row.actor not in cut or row.at < cut[row.actor]]
    return Split(train=train, searched=kept_searches, held_out=held_out, cut=cut)


def profiles(data: Split) -> dict[str, ranking.Profile]:
    """Each measured buyer's profile, from the training side only."""
    rows: dict[str, list[ranking.Interaction]] = {actor: [] for actor in data.held_out}
    for row in data.train:
        if row.actor in rows:
            rows[row.actor].append(row)
    searched: dict[str, list[ranking.Searched]] = {actor: [] for actor in data.held_out}
    for search in data.searched:
        if search.actor in searched:
            searched[search.actor].append(search)
    found = {}
    for actor, own in rows.items():
        province = next((row.province for row in own if row.province), None)
        found[actor] = ranking.Profile(
            interactions=own, searched=searched[actor], province=province,
            signed=frozenset(row.project_id for row in own if row.kind == "intent"))
    return found


Method = Callable[[ranking.Model, ranking.Profile], np.ndarray]


def popularity(model: ranking.Model, profile: ranking.Profile) -> np.ndarray:
    return model.interest.astype(np.float64)


def province_popularity(model: ranking.Model, profile: ranking.Profile) -> np.ndarray:
    return ranking.parts(model, profile).province.astype(np.float64)


def category_match(model: ranking.Model, profile: ranking.Profile) -> np.ndarray:
    return ranking.parts(model, profile).category.astype(np.float64)


def item_knn(model: ranking.Model, profile: ranking.Profile) -> np.ndarray:
    """implicit's own scoring: the profile times the similarity, its diagonal included."""
    found = ranking.parts(model, profile, ranking.Blend(half_life=math.inf))
    return np.asarray(found.weights @ model.similar).ravel() + found.weights


def blend_of(blend: ranking.Blend) -> Method:
    def method(model: ranking.Model, profile: ranking.Profile) -> np.ndarray:
        return ranking.blended(ranking.parts(model, profile, blend), blend).astype(np.float64)

    return method


@dataclass(frozen=True)
class Measured:
    name: str
    recall: float
    ndcg: float
    coverage: float
    #: Per measured buyer, in one order: 1 when the held-out project was in the top K.
    hits: list[int]


def measure(name: str, method: Method, model: ranking.Model, data: Split,
            found: dict[str, ranking.Profile]) -> Measured:
    hits, gains, shown = [], [], set()
    for actor in sorted(data.held_out):
        profile = found[actor]
        chosen = ranking.top(method(model, profile), model, exclude=profile.signed, limit=K)
        items = [model.items[position] for position in chosen]
        shown.update(items)
        target = data.held_out[actor]
        rank = items.index(target) if target in items else None
        hits.append(int(rank is not None))
        gains.append(0.0 if rank is None else 1 / math.log2(rank + 2))
    count = max(1, len(hits))
    return Measured(name=name, recall=sum(hits) / count, ndcg=sum(gains) / count,
                    coverage=len(shown) / max(1, len(model.items)), hits=hits)


def tune(interactions: Sequence[ranking.Interaction], searched: Sequence[ranking.Searched],
         catalogue: Sequence[ranking.Item], *, now: dt.datetime, before_way: bool = False
         ) -> ranking.Blend:
    """The blend's weights that do best on the training side: its own most recent intents
    held out again (a validation split), never the test's."""
    inner = split(interactions, searched, before_way=before_way)
    if not inner.held_out:
        return ranking.SHIPPED
    model = ranking.build(inner.train, catalogue, now=now)
    found = profiles(inner)
    best, best_score = ranking.SHIPPED, (-1.0, -1.0)
    names = list(GRID)
    for values in itertools.product(*GRID.values()):
        blend = replace(ranking.SHIPPED, **dict(zip(names, values, strict=True)))
        result = measure("tuning", blend_of(blend), model, inner, found)
        score = (result.recall, result.ndcg)
        if score > best_score:
            best, best_score = blend, score
    return best


@dataclass(frozen=True)
class Report:
    protocol: str
    buyers: int
    train_interactions: int
    rows: list[Measured]
    tuned: ranking.Blend
    #: The blend that ships against provincial popularity: recall@K difference and its CI.
    difference: float
    interval: tuple[float, float]
    relative: float


def bootstrap(a: Sequence[int], b: Sequence[int], *, samples: int = BOOTSTRAP_SAMPLES,
              seed: int = 17) -> tuple[float, float]:
    """A 95% percentile interval of mean(a) - mean(b), resampling the buyers."""
    if not a:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    paired = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    picks = rng.integers(0, len(paired), size=(samples, len(paired)))
    low, high = np.percentile(paired[picks].mean(axis=1), [2.5, 97.5])
    return (float(low), float(high))


def evaluate(interactions: Sequence[ranking.Interaction], searched: Sequence[ranking.Searched],
             catalogue: Sequence[ranking.Item], *, now: dt.datetime,
             tune_weights: bool = True, before_way: bool = False) -> Report:
    """Every method measured on the same split, the shipped blend against provincial
    popularity with a bootstrap interval."""
    data = split(interactions, searched, before_way=before_way)
    model = ranking.build(data.train, catalogue, now=now)
    found = profiles(data)
    tuned = (tune(data.train, data.searched, catalogue, now=now, before_way=before_way)
             if tune_weights else ranking.SHIPPED)
    rows = [
        measure("popularity", popularity, model, data, found),
        measure("province popularity", province_popularity, model, data, found),
        measure("category match", category_match, model, data, found),
        measure("item-kNN (implicit)", item_knn, model, data, found),
        measure("blend (shipped)", blend_of(ranking.SHIPPED), model, data, found),
    ]
    if tune_weights:
        rows.append(measure("blend (tuned on training)", blend_of(tuned), model, data, found))
    shipped, province = rows[4], rows[1]
    difference = shipped.recall - province.recall
    return Report(
        protocol=PROTOCOLS[before_way], buyers=len(data.held_out),
        train_interactions=len(data.train), rows=rows, tuned=tuned,
        difference=difference, interval=bootstrap(shipped.hits, province.hits),
        relative=difference / province.recall if province.recall else math.inf)


def table(report: Report) -> str:
    """The report as the CLI prints it (and the note quotes)."""
    lines = [f"held out: each buyer's most recent intent, predicted {report.protocol}; "
             f"buyers measured: {report.buyers}; training interactions: "
             f"{report.train_interactions}",
             f"{'method':<28}{'recall@10':>10}{'NDCG@10':>10}{'coverage':>10}"]
    lines += [f"{row.name:<28}{row.recall:>10.3f}{row.ndcg:>10.3f}{row.coverage:>10.3f}"
              for row in report.rows]
    low, high = report.interval
    lines.append(f"blend (shipped) - province popularity, recall@10: {report.difference:+.3f} "
                 f"(95% bootstrap CI {low:+.3f} to {high:+.3f}); relative "
                 f"{report.relative:+.1%}")
    tuned = ", ".join(f"{name}={value:g}" for name, value in report.tuned.as_dict().items())
    lines.append(f"weights tuned on the training side: {tuned}")
    return "\n".join(lines)
