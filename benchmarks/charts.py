"""PNG charts of whatever results benchmarks/results/*.json holds (matplotlib, no display).

    .venv/bin/python benchmarks/charts.py

One chart per benchmark that has results; written next to them as <name>.png.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS


def _bars(ax, labels: list[str], values: list[float], title: str, unit: str) -> None:
    mine = ("crucible", "batch", "runsc-")
    ours = [i for i, label in enumerate(labels) if any(k in label for k in mine)]
    highlight = ours or [len(labels) - 1]  # crucible's bar, or the larger run's
    bars = ax.bar(labels, values, color=["#2a7" if i in highlight else "#888"
                                         for i in range(len(labels))])  # fmt: skip
    ax.bar_label(bars, fmt="%.1f")
    ax.set_title(title)
    ax.set_ylabel(unit)
    ax.tick_params(axis="x", labelrotation=15)


def sandbox(r: dict, fig) -> None:
    idle = r["idle_latency"]
    names = [k for k in ("bare_docker_run_runc", "bare_docker_run", "crucible") if k in idle]
    labels = {"bare_docker_run_runc": "docker run runc", "bare_docker_run": "docker run runsc",
              "crucible": "crucible (runsc)"}  # fmt: skip
    ax1, ax2 = fig.subplots(1, 2)
    _bars(ax1, [labels[n] for n in names], [idle[n]["p50_ms"] for n in names],
          "start-to-result p50, idle service", "ms")  # fmt: skip
    _levels(ax2, r["levels"], {"bare_docker_run": "docker run runsc", "crucible": "crucible"})


def _levels(ax, levels: dict, series: dict[str, str], key: str = "evals_per_s") -> None:
    xs = [int(c) for c in levels]
    for name, label in series.items():
        ax.plot(xs, [levels[str(c)][name][key] for c in xs], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrency")
    ax.set_ylabel("evaluations / s" if key == "evals_per_s" else key)
    ax.set_title("closed-loop throughput")
    ax.set_ylim(bottom=0)
    ax.legend()


def peers(r: dict, fig) -> None:
    names = list(r["contenders"])
    labels = [n.replace(" backend)", ")").replace("crucible (", "crucible\n(") for n in names]
    ax1, ax2, ax3 = fig.subplots(1, 3)
    _bars(ax1, labels, [r["contenders"][n]["idle"]["p50_ms"] for n in names],
          "idle p50 latency", "ms")  # fmt: skip
    _bars(ax2, labels, [r["contenders"][n]["saturated_evals_per_s"] for n in names],
          "saturated throughput", "evaluations / s")  # fmt: skip
    _bars(ax3, labels, [r["contenders"][n].get("cpu_ms_per_eval", 0) for n in names],
          "whole-machine CPU per evaluation", "ms")  # fmt: skip


def backends(r: dict, fig) -> None:
    ax1, ax2 = fig.subplots(1, 2)
    arms = {k: v for k, v in r["arms"].items() if k.endswith(("c=1", "c=2"))}
    labels = [k.replace(" c=", "\nc=") for k in arms]
    _bars(ax1, labels, [v["cpu_ms"] for v in arms.values()],
          "whole-machine CPU per fresh sandbox", "ms")  # fmt: skip
    _bars(ax2, labels, [v["evals_per_s"] for v in arms.values()], "throughput", "evaluations / s")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize=7)


def boots(r: dict, fig) -> None:
    ax1, ax2 = fig.subplots(1, 2)
    cores = r["machine"]["cpus"]
    for name, levels in r["backends"].items():
        xs = [int(k) / cores for k in levels]
        ax1.plot(xs, [v["boots_per_s"] for v in levels.values()], marker="o", label=name)
        ax2.plot(xs, [v["cpu_ms_per_boot"] for v in levels.values()], marker="o", label=name)
    ax1.set(xlabel="boots in flight per core", ylabel="boots / s", title="boot throughput")
    ax2.set(xlabel="boots in flight per core", ylabel="ms", title="CPU per boot")
    for ax in (ax1, ax2):
        ax.set_ylim(bottom=0)
        ax.legend()


def languages(r: dict, fig) -> None:
    ax1, ax2 = fig.subplots(1, 2)
    width = 0.8 / max(1, len(r["backends"]))
    for i, (name, cases) in enumerate(r["backends"].items()):
        xs = [x + i * width for x in range(len(cases))]
        ax1.bar(xs, [v["result_p50_ms"] for v in cases.values()], width, label=name)
        ax2.bar(xs, [v["cpu_ms_per_eval"] for v in cases.values()], width, label=name)
    labels = list(next(iter(r["backends"].values())))
    for ax, title in ((ax1, "result p50 (compile + run)"), (ax2, "CPU per evaluation")):
        ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=7)
        ax.set(ylabel="ms", title=title)
        ax.legend()


def judge(r: dict, fig) -> None:
    """CPU per problem: the tests as separate evaluations vs one judge request."""
    axes = fig.subplots(1, len(r["backends"]))
    for ax, (backend, arms) in zip(axes, r["backends"].items(), strict=True):
        languages = sorted({label.split(" ")[0] for label in arms})
        xs = range(len(languages))
        arms_drawn = ((-0.2, "evaluations", f"{r['tests']} evaluations", "#888"),
                      (0.2, "judge", "1 judge request", "#2a7"))  # fmt: skip
        for offset, arm, label, colour in arms_drawn:
            values = [arms[f"{lang} {arm}"]["cpu_s_per_problem"] for lang in languages]
            bars = ax.bar([x + offset for x in xs], values, 0.4, label=label, color=colour)
            ax.bar_label(bars, fmt="%.1f")
        ax.set_xticks(list(xs), languages)
        ax.set(ylabel="CPU s per problem", title=f"{backend} backend")
        ax.legend()


def judge_batch(r: dict, fig) -> None:
    """Per judging: its own time and its time in the system; the client's memory."""
    ax1, ax2 = fig.subplots(1, 2)
    qs = ("50", "95", "99")
    xs = range(len(qs))
    for offset, key, label, colour in ((-0.2, "judging_s", "judging", "#2a7"),
                                       (0.2, "in_system_s", "in the system", "#888")):  # fmt: skip
        bars = ax1.bar([x + offset for x in xs], [r[key][q] for q in qs], 0.4, label=label,
                       color=colour)  # fmt: skip
        ax1.bar_label(bars, fmt="%.1f")
    ax1.set_xticks(list(xs), [f"p{q}" for q in qs])
    ax1.set(ylabel="s", title=f"{r['submissions']} x {r['tests_per_submission']} tests, "
            f"{r['tests_per_s']} tests/s")  # fmt: skip
    ax1.legend()
    rss = r["client_rss_mib"]
    series = rss.get("series")
    if series:
        ax2.plot(range(len(series)), series, color="#2a7")
        ax2.set(xlabel="run (samples, first to last)", ylim=(0, max(series) * 1.3))
    else:
        _bars(
            ax2,
            ["first tenth", "last tenth", "max"],
            [rss["first_tenth_max"], rss["last_tenth_max"], rss["max"]],
            "",
            "MiB",
        )
    ax2.set(ylabel="client RSS, MiB", title="client memory over the run")


def http(r: dict, fig) -> None:
    ax1, ax2 = fig.subplots(1, 2)
    xs = [int(c) for c in r["levels"]]
    ax1.plot(xs, [r["levels"][str(c)]["evals_per_s"] for c in xs], marker="o", label="HTTP")
    ax1.axhline(r["sandbox_layer"]["c4"]["evals_per_s"], ls="--", c="#2a7", label="sandbox layer")
    ax1.axhline(r["bare_docker_run"]["c4"]["evals_per_s"], ls=":", c="#888", label="docker run")
    ax1.set(xscale="log", xlabel="concurrency", ylabel="evaluations / s", title="throughput")
    ax1.set_xscale("log", base=2)
    ax1.set_ylim(bottom=0)
    ax1.legend()
    for q in ("p50_ms", "p95_ms"):
        ax2.plot(xs, [r["levels"][str(c)][q] for c in xs], marker="o", label=q[:3])
    ax2.set_xscale("log", base=2)
    ax2.set(xlabel="concurrency", ylabel="ms", title="end-to-end latency")
    ax2.legend()


def execution(r: dict, fig) -> None:
    _levels(fig.subplots(), r["levels"], {"sandbox_layer": "sandbox layer", "ray_layer": "Ray"})


def batch(r: dict, fig) -> None:
    ax1, ax2 = fig.subplots(1, 2)
    _bars(ax1, ["execution layer", "batch command"],
          [r["execution_layer"]["evals_per_s"], r["batch"]["evals_per_s"]],
          f"throughput, {r['batch']['n']} programs", "evaluations / s")  # fmt: skip
    _bars(ax2, [f"{r['batch']['n']}", f"{r['batch_large']['n']}"],
          [r["batch"]["peak_rss_mb"], r["batch_large"]["peak_rss_mb"]],
          "batch driver peak RSS by programs", "MB")  # fmt: skip


def scale(r: dict, fig) -> None:
    ax1, ax2 = fig.subplots(1, 2)
    labels = [str(r["small"]["n"]), str(r["large"]["n"])]
    _bars(ax1, labels, [r["small"]["evals_per_s"], r["large"]["evals_per_s"]],
          "throughput by evaluations", "evaluations / s")  # fmt: skip
    _bars(ax2, labels, [r["small"]["cluster"]["rss_mb"], r["large"]["cluster"]["rss_mb"]],
          "cluster RSS after", "MB")  # fmt: skip


def soak(r: dict, fig) -> None:
    ax1, ax2 = fig.subplots(1, 2)
    t0 = r["samples"][0]["t"]
    minutes = [(s["t"] - t0) / 60 for s in r["samples"]]
    for part in ("cluster", "dockerd"):
        ax1.plot(minutes, [s[part]["rss_mb"] for s in r["samples"]], label=part)
        ax2.plot(minutes, [s[part]["fds"] for s in r["samples"]], label=part)
    ax1.set(xlabel="minutes at saturation", ylabel="RSS MB", title="memory")
    ax2.set(xlabel="minutes at saturation", ylabel="open fds", title="file descriptors")
    ax1.legend()
    ax2.legend()


def cpu(r: dict, fig) -> None:
    ax = fig.subplots()
    names = list(
        dict.fromkeys([*r["http"]["cpu_ms_per_eval"], *r["sandbox_layer"]["cpu_ms_per_eval"]])
    )
    ys = range(len(names))
    for offset, (key, label) in enumerate((("sandbox_layer", "sandbox layer"), ("http", "HTTP"))):
        values = [r[key]["cpu_ms_per_eval"].get(n, 0) for n in names]
        ax.barh([y + 0.4 * offset for y in ys], values, height=0.4, label=label)
    ax.set_yticks([y + 0.2 for y in ys], names)
    ax.invert_yaxis()
    ax.set(xlabel="CPU ms per evaluation", title="where the CPU goes")
    ax.legend()


def control_plane(r: dict, fig) -> None:
    arms = (
        ("real_batch", "real sandboxes,\nbatch path"),
        ("null_batch", "null backend,\nbatch path"),
        ("null_http", "null backend,\nHTTP"),
    )
    ax = fig.add_subplot(1, 2, 1)
    ax.bar([label for _, label in arms], [r[key]["evals_per_s"] for key, _ in arms])
    ax.set(ylabel="evaluations per second", yscale="log", title="throughput (log scale)")
    ax = fig.add_subplot(1, 2, 2)
    names = [n for n in r["null_http"]["cpu_ms_per_eval"] if n != "benchmark driver"][:8]
    ys = range(len(names))
    for offset, (key, label) in enumerate(arms[1:]):
        values = [r[key]["cpu_ms_per_eval"].get(n, 0) for n in names]
        ax.barh([y + 0.4 * offset for y in ys], values, height=0.4, label=label.replace("\n", " "))
    ax.set_yticks([y + 0.2 for y in ys], names)
    ax.invert_yaxis()
    ax.set(xlabel="CPU ms per evaluation", title="the control plane, by component")
    ax.legend()


def queue(r: dict, fig) -> None:
    arms = [("today: 3\ntransactions", r["today_store_path"]),
            ("admit,\n100 a call", r["admit_100"]),
            ("claim+finish,\n1 a claim", r["claims"]["1x1"]),
            ("claim+finish,\n16 a claim", r["claims"]["1x16"])]  # fmt: skip
    ax = fig.add_subplot(1, 2, 1)
    labels = [label for label, _ in arms]
    ax.bar(labels, [row["server_cpu_ms"] for _, row in arms], label="PostgreSQL")
    ax.bar(labels, [row["client_cpu_ms"] for _, row in arms],
           bottom=[row["server_cpu_ms"] for _, row in arms], label="caller")  # fmt: skip
    ax.set(ylabel="CPU ms per evaluation", title="store work per evaluation")
    ax.legend()
    ax = fig.add_subplot(1, 2, 2)
    for k in ("1", "16"):
        keys = [key for key in r["claims"] if key.endswith(f"x{k}")]
        xs = [int(key.split("x")[0]) for key in keys]
        ys = [r["claims"][key]["per_s"] for key in keys]
        ax.plot(xs, ys, marker="o", label=f"{k} a claim")
    ax.set(xlabel="claimer processes", ylabel="evaluations per second", yscale="log",
           title="claim + finish throughput (2 cores, shared with the server)")  # fmt: skip
    ax.legend()


def queue_plane(r: dict, fig) -> None:
    arms = [
        (
            "dispatcher",
            r["null_dispatcher"]["evals_per_s"],
            r["null_dispatcher"]["cpu_ms_per_eval"].get("dispatcher", 0),
        )
    ]
    arms += [(f"queue plane,\n{p['dispatchers']} Dispatch", p["evals_per_s"],
              p["replaces_dispatcher_cpu_ms"]) for p in r["queue_plane"]]  # fmt: skip
    ax = fig.add_subplot(1, 2, 1)
    ax.bar([a[0] for a in arms], [a[1] for a in arms])
    ax.axhline(10 * r["real_dispatcher"]["evals_per_s"], color="grey", linestyle="--",
               label="target: 10x real sandboxes")  # fmt: skip
    ax.set(ylabel="evaluations per second", title="null backend, saturated")
    ax.legend()
    ax = fig.add_subplot(1, 2, 2)
    ax.bar([a[0] for a in arms], [a[2] for a in arms])
    ax.axhline(1.5, color="grey", linestyle="--", label="target: 1.5 ms")
    ax.set(ylabel="CPU ms per evaluation", title="what replaces the dispatcher")
    ax.legend()


def http_plane(r: dict, fig) -> None:
    phases = r["phases"]
    labels = [f"{p['plane']}\n{p['replicas']} replica(s)" for p in phases]
    for index, (key, title) in enumerate((("evals_per_s", "evaluations per second"),
                                          ("control_plane_cpu_ms_per_eval",
                                           "control-plane CPU ms per evaluation"))):  # fmt: skip
        ax = fig.add_subplot(1, 2, index + 1)
        ax.bar(labels, [p[key] for p in phases],
               color=["tab:blue" if p["plane"] == "dispatcher" else "tab:orange"
                      for p in phases])  # fmt: skip
        ax.set(title=title)
        ax.tick_params(axis="x", labelsize=7)


def batch_plane(r: dict, fig) -> None:
    planes = ("dispatcher", "queue")
    panels = (("evals_per_s", "evaluations per second"), ("peak_rss_mb", "driver peak RSS MB"))
    for index, (key, title) in enumerate(panels):
        ax = fig.add_subplot(1, 2, index + 1)
        ax.bar(planes, [r[plane][key] for plane in planes], color=["tab:blue", "tab:orange"])
        ax.set(title=title)


CHARTS: dict[str, Callable] = {"sandbox": sandbox, "peers": peers, "http": http,
                               "execution": execution, "batch": batch, "scale": scale,
                               "soak": soak, "cpu": cpu, "boots": boots,
                               "backends": backends, "languages": languages,
                               "judge": judge, "judge_batch": judge_batch,
                               "control_plane": control_plane, "queue": queue,
                               "queue_plane": queue_plane,
                               "http_plane": http_plane, "batch_plane": batch_plane}  # fmt: skip


def main() -> None:
    for name, draw in CHARTS.items():
        source = RESULTS / f"{name}.json"
        if not source.exists():
            continue
        fig = plt.figure(figsize=(11, 4.2), layout="constrained")
        draw(json.loads(source.read_text()), fig)
        fig.suptitle(f"crucible-ray: {name}")
        fig.savefig(RESULTS / f"{name}.png", dpi=90)
        plt.close(fig)
        print(f"wrote {RESULTS / f'{name}.png'}")


if __name__ == "__main__":
    main()
