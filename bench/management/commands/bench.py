"""manage.py bench: the benchmark suite at several scales, in one run (docs/benchmarks.md).

The bench app is installed only by carepath.bench_settings, so the command exists only under those settings:

    createdb carepath_bench_data
    DJANGO_SETTINGS_MODULE=carepath.bench_settings \\
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/carepath_bench_data \\
        manage.py bench --scales 10000,100000,1000000 --update-docs

For each scale, smallest first, it grows the same synthetic network to that many tasks (bench/data.py), then
measures the queue and filtered task pages beside their floors under wrk load through gunicorn (started under
the same bench settings, which mount the floor), the workspace's My work and patient pages in process,
enrollment, the sweeps and adherence, and prints the figures;
--update-docs writes the results table into docs/benchmarks.md (between its "bench:results" markers), --output
writes it to a file of its own. Synthetic rows stay in the database: use a scratch database (its name must
contain "bench" or start "test_").
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from bench import measure
from bench.data import HISTORY, OPEN, SHAPES, bench_fill, bench_task_count, require_postgresql
from bench.http import wrk_path
from pathways.models import PathwayTemplate

DOCS = Path(settings.BASE_DIR) / "docs" / "benchmarks.md"
BENCH_SETTINGS = "carepath.bench_settings"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
OPEN_MAX_DEFAULT = 100_000  # the open-heavy shape's largest default scale (1M open tasks only when asked)
OPEN_START, OPEN_END = "<!-- bench:open:start -->", "<!-- bench:open:end -->"

# Targets from issues 6, 7 and 13 (docs/benchmarks.md repeats them).
TARGETS = {
    "queue_p50": 20.0,
    "queue_p99": 60.0,
    "floor_ratio": 3.0,
    "enrol_ms": 50.0,
    "sweep_rate": 2000.0,
    "empty_sweep_ms": 20.0,
    "adherence_ms": 1000.0,
    "dashboard_ms": 1500.0,
    "my_work_ratio": 2.0,  # issue 13: My work's server time ÷ the API queue page's, same user, same run
    "patient_page_ms": 150.0,  # issue 13
    "photo_upload_ms": 1000.0,  # issue 19: a ~4 MB JPEG, re-encoding and thumbnail included
    "growth": 1.5,
    "migration_rate": 200.0,  # issue 14: enrollments moved to a new version per second, at 10,000
    "fhir_task_ratio": 2.0,  # issue 17: FHIR Task search ÷ REST task list, one patient's open tasks, same run
    "fhir_bundle_ms": 150.0,  # issue 17: a 10-Observation transaction Bundle, rules included
}
# Issue 15's targets for the open-heavy shape (at 100,000 open tasks).
OPEN_TARGETS = {
    "list_p50": 25.0,  # pool and queue pages
    "list_p99": 60.0,
    "assigned_p50": 15.0,
    "floor_ratio": 1.5,
    "claim_ms": 12.0,
    "enrol_ms": 15.0,
    "growth": 1.5,
}


def _scales(text: str) -> list[int]:
    try:
        values = sorted({int(v.replace("_", "")) for v in text.split(",") if v.strip()})
    except ValueError:
        raise CommandError("--scales takes comma-separated task counts, e.g. 10000,100000,1000000") from None
    if not values or values[0] < 100:
        raise CommandError("each scale must be at least 100 tasks")
    return values


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as info:
            kb = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    try:
        # wrk prints its version to stdout; fixed argv
        version = subprocess.run([wrk_path(), "-v"], capture_output=True, text=True, check=False)  # noqa: S603
        wrk = version.stdout.split("\n")[0]
    except CommandError:
        wrk = "not installed"
    import gunicorn
    import rest_framework

    return {
        "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}){mem}",
        "versions": (
            f"Python {platform.python_version()}, Django {django.get_version()}, DRF {rest_framework.__version__}, "
            f"gunicorn {gunicorn.__version__}, PostgreSQL {pg} (same machine), {wrk.strip()}"
        ),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ok(met: bool | None) -> str:
    return "" if met is None else (" ✓" if met else " ✗")


def _workspace_queries(r: measure.ScaleResult) -> tuple[int, int, int]:
    return (
        r.workspace["my_work"]["queries"],
        r.workspace["patient"]["queries"],
        r.workspace["queue_api"]["queries"],
    )


def results_markdown(results: list[measure.ScaleResult], info: dict[str, str], options: dict[str, Any]) -> str:
    """The results block of docs/benchmarks.md: one column per scale, targets beside them."""
    head = [f"{r.tasks:,} tasks" for r in results]
    lines = [
        f"Run {timezone.now():%Y-%m-%d %H:%M} UTC: `manage.py bench --scales {','.join(str(r.tasks) for r in results)}"
        + (" --quick" if options.get("quick") else "")
        + "`",
        "",
        f"- Machine: {info['machine']}; load average at the start {info['load']}.",
        f"- Versions: {info['versions']}.",
        f"- HTTP: gunicorn with {options['workers']} sync workers (as compose.yaml), wrk from a second process, "
        f"{options['connections']} connections; per page 3 rounds of {options['seconds']:g} s alternating API and "
        "floor after a warm-up, each figure the median of the rounds.",
        "",
        "| Measure | Target | " + " | ".join(head) + " |",
        "|---|---|" + "---|" * len(results),
    ]

    def row(label: str, target: str, values: list[str]) -> None:
        lines.append(f"| {label} | {target} | " + " | ".join(values) + " |")

    def per(fn: Any) -> list[str]:
        out = []
        for r in results:
            try:
                out.append(fn(r))
            except (KeyError, TypeError, ZeroDivisionError):
                out.append("—")
        return out

    row(
        "Data: enrollments (live) / open tasks",
        "",
        per(lambda r: f"{r.data['enrollments']:,} ({r.data['live_enrollments']:,}) / {r.data['open_tasks']:,}"),
    )
    row("Data: fill time", "a few minutes at 1M", per(lambda r: f"{r.data['fill_seconds']:.0f} s"))
    for name, title in (
        ("queue", "Queue page `/api/v1/queue/`"),
        ("tasks", "Filtered tasks `/api/v1/tasks/?overdue=true&prong=wound_care`"),
    ):
        row(f"{title}: rows (count)", "", per(lambda r, n=name: f"{r.pages[n]['count']:,}"))
        for label, key in (("p50", "p50_ms"), ("p99", "p99_ms")):
            target = {"queue": {"p50": "< 20 ms", "p99": "< 60 ms"}}.get(name, {}).get(label, "")
            limit = {"p50": TARGETS["queue_p50"], "p99": TARGETS["queue_p99"]}[label] if name == "queue" else None
            row(
                f"{title}: API {label}",
                target,
                per(
                    lambda r, n=name, k=key, lim=limit: (
                        f"{getattr(r.pages[n]['api'], k):.1f} ms"
                        + _ok(None if lim is None else getattr(r.pages[n]["api"], k) < lim)
                    )
                ),
            )
            row(
                f"{title}: floor {label}", "", per(lambda r, n=name, k=key: f"{getattr(r.pages[n]['floor'], k):.1f} ms")
            )
        row(
            f"{title}: server time in process, API / floor (statements)",
            "",
            per(
                lambda r, n=name: "{:.1f} ms ({}) / {:.1f} ms ({})".format(
                    r.data["pages_in_process"][n]["api"]["median_ms"],
                    r.data["pages_in_process"][n]["api"]["queries"],
                    r.data["pages_in_process"][n]["floor"]["median_ms"],
                    r.data["pages_in_process"][n]["floor"]["queries"],
                )
            ),
        )
        row(
            f"{title}: requests/s API / floor",
            "",
            per(lambda r, n=name: f"{r.pages[n]['api'].rps:,.0f} / {r.pages[n]['floor'].rps:,.0f}"),
        )
        row(
            f"{title}: API / floor (p50; req/s)",
            "≤ 3x" if name == "queue" else "",
            per(
                lambda r, n=name: (
                    f"{r.pages[n]['ratio_p50']:.2f}x ; {r.pages[n]['ratio_rps']:.2f}x"
                    + _ok(r.pages[n]["ratio_p50"] <= TARGETS["floor_ratio"] if n == "queue" else None)
                )
            ),
        )
    row(
        "Enrollment (apply the pathway to one patient), median / p90",
        "< 50 ms",
        per(
            lambda r: (
                f"{r.enrollment['median_ms']:.1f} / {r.enrollment['p90_ms']:.1f} ms"
                + _ok(r.enrollment["median_ms"] < TARGETS["enrol_ms"])
            )
        ),
    )
    row(
        "Enrollment: queries (templates applied) per patient shape",
        "fixed",
        per(
            lambda r: (
                "; ".join(
                    f"{v['queries']} ({v['templates_applied']} templates)" for v in r.enrollment["shapes"].values()
                )
                + _ok(len({v["queries"] for v in r.enrollment["shapes"].values()}) == 1)
            )
        ),
    )
    row(
        "Materializer: due occurrences/s",
        "≥ 2,000/s",
        per(
            lambda r: (
                f"{r.sweep['occurrences']:,} in {r.sweep['seconds']:.2f} s = {r.sweep['rate']:,.0f}/s"
                + _ok(r.sweep["rate"] >= TARGETS["sweep_rate"])
            )
        ),
    )
    row(
        "Empty materializer sweep (median)",
        "< 20 ms",
        per(
            lambda r: (
                f"{r.sweep['empty_materialize_ms']:.2f} ms"
                + _ok(r.sweep["empty_materialize_ms"] < TARGETS["empty_sweep_ms"])
            )
        ),
    )
    row(
        "Version migration: active enrollments moved to the next version/s (issue 14)",
        "≥ 200/s at 10,000",
        per(
            lambda r: (
                f"{r.migration['enrollments']:,} in {r.migration['seconds']:.1f} s = {r.migration['rate']:,.0f}/s"
                + _ok(r.migration["rate"] >= TARGETS["migration_rate"])
            )
        ),
    )
    row(
        "Version migration: statements per enrollment (beyond each batch's fixed ones)",
        "constant",
        per(lambda r: f"{r.migration['queries_per_enrollment']:g}" + _ok(r.migration["queries_constant"])),
    )
    row(
        "Version migration, the version also removing a template (one open task cancelled per enrollment): "
        "enrollments/s; statements per enrollment",
        "",
        per(
            lambda r: (
                f"{r.migration['removal']['enrollments']:,} in {r.migration['removal']['seconds']:.1f} s = "
                f"{r.migration['removal']['rate']:,.0f}/s; {r.migration['removal']['queries_per_enrollment']:g}"
                + _ok(r.migration["removal"]["queries_constant"])
            )
        ),
    )
    row("Empty escalation sweep (median)", "", per(lambda r: f"{r.sweep['empty_escalate_ms']:.2f} ms"))
    row("Empty reminder sweep (median)", "", per(lambda r: f"{r.sweep['empty_remind_ms']:.2f} ms"))
    for group in ("prong", "role"):
        row(
            f"Adherence by {group}, last 30 days",
            "< 1 s" if group == "prong" else "",
            per(lambda r, g=group: f"{r.adherence[f'{g}_30d_ms']:,.0f} ms ({r.adherence['tasks_30d']:,} tasks)"),
        )
        row(
            f"Adherence by {group}, every task in the table",
            "< 1 s" if group == "prong" else "",
            per(
                lambda r, g=group: (
                    f"{r.adherence[f'{g}_all_ms']:,.0f} ms ({r.adherence['tasks_all']:,} tasks)"
                    + _ok(r.adherence[f"{g}_all_ms"] < TARGETS["adherence_ms"] if g == "prong" else None)
                )
            ),
        )
    row(
        "Dashboard overview page, server time (auditor, default window)",
        "< 1.5 s",
        per(
            lambda r: (
                f"{r.dashboard['overview_ms']:,.0f} ms" + _ok(r.dashboard["overview_ms"] < TARGETS["dashboard_ms"])
            )
        ),
    )
    row(
        "My work page `/work/` (the queue page's wound nurse), server time in process (statements)",
        "",
        per(lambda r: f"{r.workspace['my_work']['median_ms']:.1f} ms ({r.workspace['my_work']['queries']})"),
    )
    row(
        "My work ÷ API queue page `/api/v1/queue/`, server time in process, same user and run",
        "≤ 2x",
        per(
            lambda r: (
                f"{r.workspace['my_work']['median_ms']:.1f} / {r.workspace['queue_api']['median_ms']:.1f} ms = "
                f"{r.workspace['ratio']:.2f}x" + _ok(r.workspace["ratio"] <= TARGETS["my_work_ratio"])
            )
        ),
    )
    row(
        "Patient page `/patients/<id>/` (a live enrollment's full history), server time in process (statements)",
        "< 150 ms",
        per(
            lambda r: (
                f"{r.workspace['patient']['median_ms']:.1f} ms ({r.workspace['patient']['queries']})"
                + _ok(r.workspace["patient"]["median_ms"] < TARGETS["patient_page_ms"])
            )
        ),
    )
    row(
        "Statements per request: My work / patient page / API queue page",
        f"constant (as at {results[0].tasks:,})",
        per(
            lambda r: (
                "{} / {} / {}".format(*_workspace_queries(r))
                + _ok(_workspace_queries(r) == _workspace_queries(results[0]))
            )
        ),
    )
    row(
        "FHIR Task search ÷ REST task list, one patient's open tasks, server time in process, same user and run "
        "(statements)",
        "≤ 2x",
        per(
            lambda r: (
                f"{r.fhir['task_search']['median_ms']:.1f} ({r.fhir['task_search']['queries']}) / "
                f"{r.fhir['task_list']['median_ms']:.1f} ms ({r.fhir['task_list']['queries']}) = "
                f"{r.fhir['ratio']:.2f}x" + _ok(r.fhir["ratio"] <= TARGETS["fhir_task_ratio"])
            )
        ),
    )
    row(
        "FHIR transaction Bundle of 10 Observations, rules included, server time in process (statements)",
        "< 150 ms",
        per(
            lambda r: (
                f"{r.fhir['bundle']['median_ms']:.1f} ms ({r.fhir['bundle']['queries']})"
                + _ok(r.fhir["bundle"]["median_ms"] < TARGETS["fhir_bundle_ms"])
            )
        ),
    )
    row(
        "Wound photo upload, a ~4 MB 8 MP JPEG through the API (type check, re-encode, thumbnail, store), in process",
        "< 1 s",
        per(
            lambda r: (
                f"{r.photos['upload_median_ms']:,.0f} ms ({r.photos['upload_bytes'] / 1e6:.1f} MB)"
                + _ok(r.photos["upload_median_ms"] < TARGETS["photo_upload_ms"])
            )
        ),
    )
    row(
        "Patient page with 50 wound photos (thumbnails only), server time in process (statements; with 1 photo)",
        "constant statements",
        per(
            lambda r: (
                f"{r.photos['page_median_ms']:.1f} ms ({r.photos['page_queries']}; {r.photos['page_1_photo_queries']})"
                + _ok(r.photos["page_queries"] == r.photos["page_1_photo_queries"])
            )
        ),
    )
    if len(results) > 1:
        first, last = results[0], results[-1]
        lines += [
            "",
            f"Growth from {first.tasks:,} to {last.tasks:,} tasks (last / first; target < 1.5x for pages and sweeps):",
            "",
        ]
        growth: list[str] = []
        for name in ("queue", "tasks"):
            for kind in ("api", "floor"):
                try:
                    g = last.pages[name][kind].p50_ms / first.pages[name][kind].p50_ms
                    growth.append(f"{name} page {kind} p50 {g:.2f}x{_ok(g < TARGETS['growth'])}")
                except (KeyError, ZeroDivisionError):
                    pass
        for key, label in (("empty_materialize_ms", "empty materializer sweep"), ("rate", "materializer rate")):
            try:
                g = last.sweep[key] / first.sweep[key]
                growth.append(f"{label} {g:.2f}x" + (_ok(g < TARGETS["growth"]) if key != "rate" else ""))
            except (KeyError, ZeroDivisionError):
                pass
        for page, label in (("my_work", "My work page"), ("patient", "patient page")):
            try:
                g = last.workspace[page]["median_ms"] / first.workspace[page]["median_ms"]
                growth.append(f"{label} server time in process {g:.2f}x")
            except (KeyError, ZeroDivisionError):
                pass
        try:
            growth.append(f"enrollment {last.enrollment['median_ms'] / first.enrollment['median_ms']:.2f}x")
            growth.append(
                f"adherence by prong, 30 days {last.adherence['prong_30d_ms'] / first.adherence['prong_30d_ms']:.2f}x"
            )
            every = last.adherence["prong_all_ms"] / first.adherence["prong_all_ms"]
            grew = last.tasks / first.tasks
            growth.append(f"adherence by prong, every task {every:.2f}x (the table grew {grew:.0f}x)")
        except (KeyError, ZeroDivisionError):
            pass
        lines += [f"- {g}" for g in growth]
    return "\n".join(lines) + "\n"


def open_results_markdown(results: list[measure.ScaleResult], info: dict[str, str], options: dict[str, Any]) -> str:
    """The open-heavy shape's block of docs/benchmarks.md (issue 15): one column per scale of open work."""
    head = [f"{r.tasks:,} tasks" for r in results]
    lines = [
        f"Run {timezone.now():%Y-%m-%d %H:%M} UTC: `manage.py bench --shapes open "
        f"--open-scales {','.join(str(r.tasks) for r in results)}`",
        "",
        f"- Machine: {info['machine']}; load average at the start {info['load']}.",
        f"- HTTP as above: {options['workers']} gunicorn workers, {options['connections']} wrk connections, "
        f"3 rounds of {options['seconds']:g} s per page alternating API and floor.",
        "",
        "| Measure | Target | " + " | ".join(head) + " |",
        "|---|---|" + "---|" * len(results),
    ]

    def row(label: str, target: str, fn: Any) -> None:
        values = []
        for r in results:
            try:
                values.append(fn(r))
            except (KeyError, TypeError, ZeroDivisionError, AttributeError):
                values.append("—")
        lines.append(f"| {label} | {target} | " + " | ".join(values) + " |")

    row(
        "Data: live enrollments / open tasks (whole database) / specialists",
        "",
        lambda r: f"{r.data['live_enrollments']:,} / {r.plans['open_tasks_in_db']:,} / {r.data['specialists']:,}",
    )
    row("Data: fill time", "", lambda r: f"{r.data['fill_seconds']:.0f} s")
    for name, (username, api, _) in measure.OPEN_PAGES.items():
        title = f"`{api.removeprefix('/api/v1')}` ({username.split('-')[2]})"
        p50_target = {"queue": "list_p50", "pool": "list_p50", "assigned": "assigned_p50"}.get(name)
        row(f"{title}: rows the user sees", "", lambda r, n=name: f"{r.plans[n]['visible']:,}")
        row(
            f"{title}: rows read, page + count (task rows)",
            "follows the user",
            lambda r, n=name: (
                f"{r.plans[n]['page_rows'] + r.plans[n]['count_rows']:,} "
                f"({r.plans[n]['page_task_rows'] + r.plans[n]['count_task_rows']:,})"
            ),
        )
        if options.get("http"):
            row(
                f"{title}: API p50 / floor p50",
                f"≤ {OPEN_TARGETS[p50_target]:g} ms" if p50_target else "",
                lambda r, n=name, t=p50_target: (
                    f"{r.pages[n]['api'].p50_ms:.1f} / {r.pages[n]['floor'].p50_ms:.1f} ms"
                    + _ok(r.pages[n]["api"].p50_ms <= OPEN_TARGETS[t] if t else None)
                ),
            )
            row(
                f"{title}: API p99 / floor p99",
                f"≤ {OPEN_TARGETS['list_p99']:g} ms" if name in ("queue", "pool") else "",
                lambda r, n=name: (
                    f"{r.pages[n]['api'].p99_ms:.1f} / {r.pages[n]['floor'].p99_ms:.1f} ms"
                    + _ok(r.pages[n]["api"].p99_ms <= OPEN_TARGETS["list_p99"] if n in ("queue", "pool") else None)
                ),
            )
            row(
                f"{title}: API ÷ floor (p50)",
                f"≤ {OPEN_TARGETS['floor_ratio']:g}x",
                lambda r, n=name: (
                    f"{r.pages[n]['ratio_p50']:.2f}x" + _ok(r.pages[n]["ratio_p50"] <= OPEN_TARGETS["floor_ratio"])
                ),
            )
        row(
            f"{title}: server time in process, API / floor (statements)",
            "",
            lambda r, n=name: "{:.1f} ms ({}) / {:.1f} ms ({})".format(
                r.data["pages_in_process"][n]["api"]["median_ms"],
                r.data["pages_in_process"][n]["api"]["queries"],
                r.data["pages_in_process"][n]["floor"]["median_ms"],
                r.data["pages_in_process"][n]["floor"]["queries"],
            ),
        )
    row(
        "Claim / unclaim through the API in process, median (statements)",
        f"≤ {OPEN_TARGETS['claim_ms']:g} ms",
        lambda r: (
            f"{r.claims['claim_ms']:.1f} ({r.claims['claim_queries']}) / "
            f"{r.claims['unclaim_ms']:.1f} ms ({r.claims['unclaim_queries']})"
            + _ok(max(r.claims["claim_ms"], r.claims["unclaim_ms"]) <= OPEN_TARGETS["claim_ms"])
        ),
    )
    row(
        "Enrollment, median (queries for 18 / 15 templates)",
        f"≤ {OPEN_TARGETS['enrol_ms']:g} ms, constant",
        lambda r: (
            f"{r.enrollment['median_ms']:.1f} ms ("
            + " / ".join(str(v["queries"]) for v in r.enrollment["shapes"].values())
            + ")"
            + _ok(r.enrollment["median_ms"] <= OPEN_TARGETS["enrol_ms"])
        ),
    )
    if len(results) > 1:
        first, last = results[0], results[-1]
        lines += ["", f"Growth from {first.tasks:,} to {last.tasks:,} open-heavy tasks (last / first):", ""]
        for name in measure.OPEN_PAGES:
            parts = []
            try:
                rows = [r.plans[name]["page_rows"] + r.plans[name]["count_rows"] for r in (first, last)]
                seen = [r.plans[name]["visible"] for r in (first, last)]
                parts.append(f"rows read {rows[1] / rows[0]:.2f}x (rows seen {seen[1] / seen[0]:.2f}x)")
                key = "api" if options.get("http") else None
                if key:
                    g = last.pages[name][key].p50_ms / first.pages[name][key].p50_ms
                    parts.append(f"API p50 {g:.2f}x" + _ok(g < OPEN_TARGETS["growth"] if seen[0] == seen[1] else None))
                g = (
                    last.data["pages_in_process"][name]["api"]["median_ms"]
                    / first.data["pages_in_process"][name]["api"]["median_ms"]
                )
                parts.append(f"in-process server time {g:.2f}x")
            except (KeyError, ZeroDivisionError):
                continue
            lines.append(f"- {name}: " + "; ".join(parts))
    return "\n".join(lines) + "\n"


def write_docs(path: Path, block: str, start: str = START, end: str = END) -> None:
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{block}{end}", text, flags=re.S)
    else:
        text += f"\n{start}\n{block}{end}\n"
    path.write_text(text)


class Command(BaseCommand):
    help = (
        "Benchmark Carepath at several scales on a scratch PostgreSQL database: pages beside their floors "
        "(gunicorn + wrk), enrollment, sweeps, adherence. Run it under the bench settings: "
        f"DJANGO_SETTINGS_MODULE={BENCH_SETTINGS} manage.py bench ... (or --settings {BENCH_SETTINGS}). "
        "See docs/benchmarks.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scales", default="10000,100000,1000000", help="task counts, e.g. 10000,100000,1000000")
        parser.add_argument(
            "--shapes", default="history,open", help="data shapes to run: history (--scales), open (--open-scales)"
        )
        parser.add_argument(
            "--open-scales",
            default=None,
            help="task counts of the open-heavy shape, nearly all open (default: the --scales up to 100,000)",
        )
        parser.add_argument("--quick", action="store_true", help="short runs (smoke test, a first look)")
        parser.add_argument("--no-http", dest="http", action="store_false", help="skip gunicorn/wrk (in-process pages)")
        parser.add_argument(
            "--seconds", type=float, default=None, help="wrk duration per round and page (3 rounds; default 5, quick 1)"
        )
        parser.add_argument("--connections", type=int, default=2, help="concurrent wrk connections (2 = the cores)")
        parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (compose.yaml: 3)")
        parser.add_argument("--occurrences", type=int, default=None, help="due occurrences for the sweep (10,000)")
        parser.add_argument("--repeat", type=int, default=None, help="repetitions of in-process timings")
        parser.add_argument(
            "--migrations", type=int, default=None, help="active enrollments moved to a new version (10,000)"
        )
        parser.add_argument("--no-progress", dest="progress", action="store_false")
        parser.add_argument("--update-docs", action="store_true", help="write the results into docs/benchmarks.md")
        parser.add_argument("--output", type=Path, default=None, help="write the results (Markdown) to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        require_postgresql()
        name = str(connection.settings_dict["NAME"])
        if "bench" not in name and not name.startswith("test_"):
            raise CommandError(
                f"refusing to fill database {name!r} with synthetic rows: use a scratch database whose name "
                f"contains 'bench', e.g. DJANGO_SETTINGS_MODULE={BENCH_SETTINGS} "
                "DATABASE_URL=postgres://postgres@127.0.0.1:5432/carepath_bench_data manage.py bench "
                "(docs/benchmarks.md)"
            )
        scales = _scales(options["scales"])
        quick = options["quick"]
        seconds = options["seconds"] or (1.0 if quick else 5.0)
        occurrences = options["occurrences"] if options["occurrences"] is not None else (500 if quick else 10_000)
        repeat = options["repeat"] or (3 if quick else 10)
        migrations = options["migrations"] if options["migrations"] is not None else (100 if quick else 10_000)
        options.update(seconds=seconds)
        if options["http"]:
            wrk_path()
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            call_command("migrate", verbosity=0)
        if not PathwayTemplate.objects.filter(slug="calciphylaxis", status="active").exists():
            call_command("load_pathways", verbosity=0, stdout=self.stdout)
        shapes = [v.strip() for v in options["shapes"].split(",") if v.strip()]
        unknown = sorted(set(shapes) - set(SHAPES))
        if unknown or not shapes:
            raise CommandError(f"--shapes takes {', '.join(SHAPES)}; not {', '.join(unknown) or 'nothing'}")
        open_scales: list[int] = []
        if "open" in shapes:
            open_scales = (
                _scales(options["open_scales"])
                if options["open_scales"]
                else ([s for s in scales if s <= OPEN_MAX_DEFAULT] or scales[:1])
            )
        for shape, wanted in ((HISTORY, scales if "history" in shapes else []), (OPEN, open_scales)):
            have = bench_task_count(shape)
            if wanted and have > wanted[0]:
                raise CommandError(
                    f"the database already holds {have:,} {shape.name} bench tasks, more than the smallest scale "
                    f"{wanted[0]:,}: use a fresh database"
                )
        info = machine()
        self.stdout.write(f"machine:  {info['machine']}\nversions: {info['versions']}\ndatabase: {name}")
        if "history" in shapes:
            self._history(
                scales,
                info,
                options,
                repeat=repeat,
                seconds=seconds,
                occurrences=occurrences,
                migrations=migrations,
            )
        if "open" in shapes:
            self._open(open_scales, info, options, repeat=repeat, seconds=seconds)

    def _history(
        self,
        scales: list[int],
        info: dict[str, str],
        options: dict[str, Any],
        *,
        repeat: int,
        seconds: float,
        occurrences: int,
        migrations: int,
    ) -> None:
        """The history-heavy shape: every measurement at every scale."""
        results = []
        for scale in scales:
            self.stdout.write(self.style.MIGRATE_HEADING(f"== {scale:,} tasks"))
            fill = bench_fill(tasks=scale, now=timezone.now(), progress=options["progress"])
            measure.settle()
            result = measure.ScaleResult(tasks=scale)
            result.data = {**measure.data_shape(), "fill_seconds": fill.seconds}
            self.stdout.write(f"  filled in {fill.seconds:.1f} s: {result.data}")
            if options["http"]:
                result.pages = measure.measure_pages(
                    seconds=seconds,
                    connections=options["connections"],
                    workers=options["workers"],
                    out=self.stdout.write,
                )
            inproc = measure.measure_pages_in_process(repeat=repeat * 2)
            self.stdout.write(f"  pages in process (no HTTP, no load): {inproc}")
            result.data["pages_in_process"] = inproc
            result.workspace = measure.measure_workspace(repeat=repeat * 2)
            self.stdout.write(f"  workspace pages in process: {result.workspace}")
            result.fhir = measure.measure_fhir(repeat=repeat * 2)
            self.stdout.write(f"  FHIR in process: {result.fhir}")
            result.enrollment = measure.measure_enrollment(repeat=repeat)
            self.stdout.write(f"  enrollment: {result.enrollment}")
            result.photos = measure.measure_photos(repeat=max(3, repeat // 2))
            self.stdout.write(f"  wound photos: {result.photos}")
            result.adherence = measure.measure_adherence(repeat=max(1, repeat // 2))
            self.stdout.write(f"  adherence: {result.adherence}")
            result.dashboard = measure.measure_dashboard(repeat=max(1, repeat // 2))
            self.stdout.write(f"  dashboard: {result.dashboard}")
            result.sweep = measure.measure_sweeps(occurrences=occurrences, repeat=repeat * 2)
            self.stdout.write(f"  sweeps: {result.sweep}")
            if migrations:
                result.migration = measure.measure_migration(enrollments=migrations)
                self.stdout.write(f"  version migration: {result.migration}")
                result.migration["removal"] = measure.measure_migration(
                    enrollments=min(migrations, 1000), with_removal=True
                )
                self.stdout.write(f"  version migration with a removed template: {result.migration['removal']}")
            measure.cleanup_side_data()
            results.append(result)
        block = results_markdown(results, info, options)
        self.stdout.write("\n" + block)
        if options["output"]:
            options["output"].write_text(block)
        if options["update_docs"]:
            write_docs(DOCS, block)
            self.stdout.write(f"wrote the results into {DOCS}")

    def _open(
        self, scales: list[int], info: dict[str, str], options: dict[str, Any], *, repeat: int, seconds: float
    ) -> None:
        """The open-heavy shape (issue 15): the list pages with their floors, the rows their queries read,
        claim/unclaim and enrollment, at each scale of open work."""
        results = []
        for scale in scales:
            self.stdout.write(self.style.MIGRATE_HEADING(f"== open-heavy: {scale:,} tasks"))
            fill = bench_fill(tasks=scale, now=timezone.now(), progress=options["progress"], shape=OPEN)
            measure.settle()
            result = measure.ScaleResult(tasks=scale)
            result.data = {**measure.data_shape(OPEN), "fill_seconds": fill.seconds}
            self.stdout.write(f"  filled in {fill.seconds:.1f} s: {result.data}")
            result.plans = measure.measure_plans(measure.OPEN_PAGES)
            self.stdout.write(f"  rows read: {result.plans}")
            if options["http"]:
                result.pages = measure.measure_pages(
                    seconds=seconds,
                    connections=options["connections"],
                    workers=options["workers"],
                    out=self.stdout.write,
                    pages=measure.OPEN_PAGES,
                )
            inproc = measure.measure_pages_in_process(repeat=repeat * 2, pages=measure.OPEN_PAGES)
            self.stdout.write(f"  pages in process (no HTTP, no load): {inproc}")
            result.data["pages_in_process"] = inproc
            result.claims = measure.measure_claims(repeat=repeat)
            self.stdout.write(f"  claims: {result.claims}")
            result.enrollment = measure.measure_enrollment(repeat=repeat)
            self.stdout.write(f"  enrollment: {result.enrollment}")
            measure.cleanup_side_data()
            results.append(result)
        block = open_results_markdown(results, info, options)
        self.stdout.write("\n" + block)
        if options["output"]:
            path = options["output"]
            path = path.with_name(path.stem + "-open" + path.suffix) if "history" in options["shapes"] else path
            path.write_text(block)
        if options["update_docs"]:
            write_docs(DOCS, block, OPEN_START, OPEN_END)
            self.stdout.write(f"wrote the open-heavy results into {DOCS}")
