"""``explainer attribute`` and ``explainer patch``: why the model predicts what it predicts.

- ``attribute``: input × gradient of a next token's log-probability, one signed score per input token;
- ``patch``: activation patching of a clean text into a corrupted one, a layers × positions grid of P(target).

Layers and heads are numbered from 1, as in the window. Errors a user can cause: one sentence, exit 2.
"""

from __future__ import annotations

import sys

from explainer.cli import (
    _out,
    _stderr_progress,
    ablated_heads,
    add_text_args,
    clean_text,
    heads_json,
    read_texts,
    token_json,
)
from explainer.core import work_memory
from explainer.core.errors import UserError

PATCH_SECONDS = 60  # longer patching waits for --wait: without a terminal nothing shows it is running


def add_attribute_arguments(parser) -> None:
    """attribute a next-token prediction to the input tokens (input × gradient)"""
    add_text_args(parser)
    parser.add_argument(
        "--target", type=int, metavar="ID", help="the token id to explain (default: the most likely next token)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON array, one object per text")
    parser.add_argument("--text-file", metavar="PATH", help="read the text from a file, or - for standard input")
    parser.add_argument("text", nargs="*", metavar="TEXT")
    parser.set_defaults(handler=cmd_attribute)


def add_patch_arguments(parser) -> None:
    """activation patching: where a clean text's answer is carried, layer by position"""
    add_text_args(parser)
    parser.add_argument(
        "--clean", required=True, metavar="TEXT", help="the clean text (its top next token is the target)"
    )
    parser.add_argument("--corrupt", required=True, metavar="TEXT", help="the corrupted text, of the same token length")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--wait",
        action="store_true",
        help=f"run even when it will take more than {PATCH_SECONDS} seconds (the work grows with the square of "
        "the texts' length)",
    )
    parser.set_defaults(handler=cmd_patch)


def _engine(args):
    from explainer.core.engine import Engine

    if args.max_tokens < 1:
        raise UserError("--max-tokens must be at least 1.")
    engine = Engine(args.model, device=args.device, progress=_stderr_progress)
    return engine, ablated_heads(args, engine)


def _tokens(engine, args, text: str):
    """The analysed tokens of ``text`` and whether it was cut at --max-tokens (never past the model's context)."""
    max_tokens = min(args.max_tokens, engine.info.context_length)
    _, tokens, truncated = engine.tokens_for(
        text, start_token=not args.no_start_token, max_tokens=max_tokens, parse_specials=args.parse_specials
    )
    return tokens, truncated


def _token_text(engine, token_id: int) -> str:
    return engine.tokenizer.decode([int(token_id)])


def cmd_attribute(args) -> int:
    from explainer.core.attribution import attribute

    texts = read_texts(args.text, args.text_file)
    engine, heads = _engine(args)
    rows = []
    for text in texts:
        tokens, truncated = _tokens(engine, args, text)
        work_memory.require(
            work_memory.ATTRIBUTION * work_memory.attention_weights(engine.info, len(tokens)),
            f"Attributing {len(tokens)} tokens",
            "use a shorter text or a smaller --max-tokens",
        )
        a = attribute(engine, [t.id for t in tokens], target=args.target, ablated=heads)
        rows.append(
            {
                "text": text,
                "truncated": truncated,
                "tokens": [token_json(t) for t in tokens],
                "target": {"id": a.target, "text": _token_text(engine, a.target), "prob": a.target_prob},
                "input_x_gradient": [float(s) for s in a.scores],
                "ablated": heads_json(heads),
            }
        )
    if args.json:
        _out(rows)
        return 0
    for row in rows:
        _print_attribution(row, engine)
    return 0


def _bar(value: float, scale: float, width: int = 20) -> str:
    n = round(width * abs(value) / scale) if scale > 0 else 0
    return ("+" if value >= 0 else "-") * n


def _print_attribution(row: dict, engine) -> None:
    from explainer.core.types import visible_text

    target = row["target"]
    print(
        f"{engine.info.name}: {len(row['tokens'])} token{'s' if len(row['tokens']) != 1 else ''}"
        + (" (truncated)" if row["truncated"] else "")
        + "; "
        f"next token {visible_text(target['text'])!r} (id {target['id']}), P = {target['prob']:.4f}"
    )
    if row["ablated"]:
        print("heads knocked out (layer:head): " + ", ".join(f"{l}:{h}" for l, h in row["ablated"]))
    scores = row["input_x_gradient"]
    scale = max((abs(s) for s in scores), default=0.0)
    print(f"{'#':>4}  {'token':<16} {'id':>6}  {'input×gradient':>14}")
    for i, (t, s) in enumerate(zip(row["tokens"], scores)):
        print(f"{i:>4}  {visible_text(t['text'])[:16]:<16} {t['id']:>6}  {s:>14.4f}  {_bar(s, scale)}")


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 2:
        return f"{seconds:.0f} seconds"
    if minutes < 120:
        return f"{minutes} minutes"
    return f"{seconds / 3600:.0f} hours"


def cmd_patch(args) -> int:
    from explainer.core.patching import patch

    clean, corrupt = clean_text(args.clean), clean_text(args.corrupt)
    engine, heads = _engine(args)
    clean_tokens, clean_cut = _tokens(engine, args, clean)
    corrupt_tokens, corrupt_cut = _tokens(engine, args, corrupt)
    cut = [name for name, c in (("clean", clean_cut), ("corrupted", corrupt_cut)) if c]
    if cut:  # the answer after a cut text is not the text's answer
        subject = "The clean and corrupted texts are" if len(cut) == 2 else f"The {cut[0]} text is"
        raise UserError(
            f"{subject} longer than {min(args.max_tokens, engine.info.context_length)} tokens; patching compares "
            f"whole texts: raise --max-tokens or shorten them."
        )
    clean_ids, corrupt_ids = [t.id for t in clean_tokens], [t.id for t in corrupt_tokens]

    def plan(runs: int, seconds: float) -> None:
        if seconds > PATCH_SECONDS and not args.wait:
            raise UserError(
                f"Patching these {len(clean_ids)}-token texts means {runs:,} patched runs, about "
                f"{_duration(seconds)} here; shorten the texts (the work grows with the square of their length), "
                "or add --wait to run it."
            )

    r = patch(engine, clean_ids, corrupt_ids, ablated=heads, progress=_stderr_progress, on_plan=plan)
    out = {
        "clean": clean,
        "corrupt": corrupt,
        "clean_tokens": [token_json(t) for t in clean_tokens],
        "corrupt_tokens": [token_json(t) for t in corrupt_tokens],
        "target": {"id": r.target, "text": _token_text(engine, r.target)},
        "clean_prob": r.clean_prob,
        "corrupt_prob": r.corrupt_prob,
        "prob": [[float(p) for p in row] for row in r.prob],
        "ablated": heads_json(heads),
    }
    if args.json:
        _out(out)
        return 0
    _print_grid(out, engine)
    return 0


def _print_grid(out: dict, engine) -> None:
    from explainer.core.types import visible_text

    w = 8
    target = visible_text(out["target"]["text"])
    print(
        f"{engine.info.name}: P({target!r}) at the last position, with the residual stream after layer l at "
        "position p taken from the clean run"
    )
    print(f"clean run {out['clean_prob']:.4f}, corrupted run {out['corrupt_prob']:.4f}")
    if out["ablated"]:
        print("heads knocked out (layer:head): " + ", ".join(f"{l}:{h}" for l, h in out["ablated"]))
    print(f"{'position':>9} " + "".join(f"{p:>{w}}" for p in range(len(out["clean_tokens"]))))
    for label, key in (("clean", "clean_tokens"), ("corrupt", "corrupt_tokens")):
        cells = "".join(f"{visible_text(t['text'])[: w - 1]:>{w}}" for t in out[key])
        print(f"{label:>9} {cells}")
    print(f"{'layer':>9}")
    for layer, row in enumerate(out["prob"], start=1):
        print(f"{layer:>9} " + "".join(f"{p:>{w}.3f}" for p in row))
    sys.stdout.flush()
