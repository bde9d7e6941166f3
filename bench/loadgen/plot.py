#!/usr/bin/python3
"""plot.py - latency against offered load, from a load generator sweep.

Usage: plot.py DATA.json OUT.png

DATA: {"title": str, "slo_us": number or null,
       "series": [{"label": str,
                   "points": [[offered, p50_us, p99_us, p999_us], ...]}]}
A null latency (the percentile fell among unanswered requests) is drawn
at the top edge of the plot, marked with a triangle.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)

STYLES = [("p50", ":", 1), ("p99", "-", 2), ("p99.9", "--", 3)]
COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red"]


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        data = json.load(f)
    finite = [p[i] for s in data["series"] for p in s["points"]
              for i in (1, 2, 3) if p[i] is not None]
    top = max(finite) * 2 if finite else 1e4
    fig, ax = plt.subplots(figsize=(8, 5))
    for si, s in enumerate(data["series"]):
        color = COLORS[si % len(COLORS)]
        for name, ls, col in STYLES:
            xs = [p[0] / 1e3 for p in s["points"]]
            ys = [p[col] if p[col] is not None else top
                  for p in s["points"]]
            ax.plot(xs, ys, ls, color=color, marker=".",
                    label="%s %s" % (s["label"], name))
            over = [(x, top) for x, p in zip(xs, s["points"])
                    if p[col] is None]
            if over:
                ax.plot(*zip(*over), "^", color=color)
    if data.get("slo_us"):
        ax.axhline(data["slo_us"], color="grey", lw=1)
        ax.text(ax.get_xlim()[0], data["slo_us"] * 1.05,
                " p99 bound %g us" % data["slo_us"], color="grey")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (k ops/s)")
    ax.set_ylabel("latency from scheduled send (us)")
    ax.set_title(data.get("title", ""))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
