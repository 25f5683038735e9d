"""``report.png``, for those who want the latency plot as an image file: drawn with matplotlib
when it is installed. The page does not use it (its charts are inline SVG)."""

from __future__ import annotations

from pathlib import Path


def latency_by_batch(table: dict) -> dict[str, dict[int, dict]]:
    """variant -> batch -> row."""
    out: dict[str, dict[int, dict]] = {}
    for row in table["rows"]:
        out.setdefault(row["variant"], {})[row["batch"]] = row
    return out


def plot(docs: list[dict], path: Path) -> str | None:
    """Latency by batch per variant, one panel per host; the reason when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return "matplotlib is not installed: no report.png (the page's charts do not need it)"
    fig, axes = plt.subplots(1, len(docs), figsize=(7 * len(docs), 4.5), squeeze=False)
    for ax, doc in zip(axes[0], docs):
        for variant, by_batch in latency_by_batch(doc).items():
            batches = sorted(by_batch)
            ax.plot(batches, [by_batch[b]["median_ms"] for b in batches], marker="o",
                    linestyle="--" if not next(iter(by_batch.values()))["artifact"] else "-", label=variant)
        ax.set(xscale="log", yscale="log", xlabel="batch", ylabel="median ms / forward",
               title=f"{doc['name']} on {doc['host']['id']}")
        ax.set_xticks(doc["batches"], [str(b) for b in doc["batches"]])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
