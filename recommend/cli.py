"""`flask --app wsgi fair recommendations`: rebuild a fair's model, or measure it offline."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from fair import demo
from fair.database import utcnow
from fair.extensions import db
from fair.models import Fair
from recommend import evaluation, service


def _fair(fair_id: int | None) -> Fair:
    """The fair asked for, else the demo fair (where `fair simulate --replay` writes)."""
    fair = db.session.scalar(select(Fair).where(
        Fair.id == fair_id if fair_id is not None else Fair.name == demo.DEMO_FAIR_NAME))
    if fair is None:
        raise click.ClickException(
            "No such fair." if fair_id is not None
            else "There is no demo fair yet: run `flask --app wsgi fair demo` first.")
    return fair


@click.command("recommendations")
@click.option("--rebuild", is_flag=True, help="Build the fair's model now and store it.")
@click.option("--evaluate", is_flag=True,
              help="Hold out each buyer's most recent intent; print recall@10, NDCG@10 and "
                   "coverage of the baselines and the blend.")
@click.option("--fair", "fair_id", type=int, default=None,
              help="The fair (default: the demo fair, with the replayed reference event).")
@click.option("--no-tune", is_flag=True, help="With --evaluate: skip tuning the weights.")
@with_appcontext
def recommendations_command(rebuild: bool, evaluate: bool, fair_id: int | None,
                            no_tune: bool) -> None:
    """Rebuild or evaluate the recommender (猜你喜欢) of a fair."""
    if not rebuild and not evaluate:
        raise click.UsageError("Say --rebuild, --evaluate or both.")
    fair = _fair(fair_id)
    if rebuild:
        built = service.rebuild(fair.id)
        click.echo(f"Rebuilt the recommendations of 「{fair.name}」 (id {fair.id}) in "
                   f"{built.seconds:.1f} s: {built.projects} projects, {built.interactions} "
                   f"interactions, version {built.version}.")
    if evaluate:
        history = service.load_history(fair.id)
        catalogue = service.load_catalogue(fair.id)
        for before_way in (False, True):
            report = evaluation.evaluate(history.interactions, history.searched, catalogue,
                                         now=utcnow(), tune_weights=not no_tune,
                                         before_way=before_way)
            if report.buyers == 0:
                raise click.ClickException(
                    f"No buyer of 「{fair.name}」 has {evaluation.MIN_INTERACTIONS} "
                    "interactions and an intent: nothing to measure (try `fair simulate "
                    "--replay` first).")
            click.echo(evaluation.table(report))
            click.echo("")
